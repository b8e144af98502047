//! The one emulation of glibc's `getopt_long` (2.36), shared by the two drop-ins (`page-types`
//! and `page_owner_sort`): short option bundling, attached or separate arguments, long options
//! with `=` or a separate argument, unambiguous prefixes, argument permutation (operands are
//! set aside and returned by [`Getopt::operands`], `--` ends the options, `POSIXLY_CORRECT`
//! stops at the first operand), and glibc's exact error messages.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// One long option: name, whether it takes an argument, and the short letter it maps to.
#[derive(Clone, Copy, Debug)]
pub struct LongOpt {
    /// The name after `--`.
    pub name: &'static str,
    /// True when the option requires an argument.
    pub has_arg: bool,
    /// The value returned: a short letter (page-types), or a small code of its own
    /// (page_owner_sort's long options are 1..=5).
    pub val: u8,
}

/// What `next` produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An option (its short letter) and its argument, if it takes one.
    Opt(u8, Option<Vec<u8>>),
    /// A usage error: the message glibc prints, without the `argv[0]` prefix (e.g.
    /// `": invalid option -- 'z'\n"`).
    Error(Vec<u8>),
}

/// The parser state: `optind` and the position inside a bundle of short options.
pub struct Getopt<'a> {
    args: Vec<Vec<u8>>,
    shorts: &'a [u8],
    longs: &'a [LongOpt],
    optind: usize,
    next_char: Option<(usize, usize)>,
    posixly_correct: bool,
    done: bool,
    operands: Vec<Vec<u8>>,
}

impl<'a> Getopt<'a> {
    /// Parse `args` (without `argv[0]`) against the short option string (glibc syntax, `x:`
    /// for an option with an argument) and the long options.
    pub fn new(
        args: &[OsString],
        shorts: &'a [u8],
        longs: &'a [LongOpt],
        posixly_correct: bool,
    ) -> Getopt<'a> {
        Getopt {
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            shorts,
            longs,
            optind: 0,
            next_char: None,
            posixly_correct,
            done: false,
            operands: Vec::new(),
        }
    }

    /// The operands (non-option arguments) in their order, once the iterator has ended: those
    /// skipped over while permuting, then everything after `--` (or, with `POSIXLY_CORRECT`,
    /// from the first operand on).
    pub fn operands(&self) -> &[Vec<u8>] {
        &self.operands
    }

    fn end_with_rest(&mut self, from: usize) -> Option<Event> {
        self.done = true;
        self.operands
            .extend(self.args.get(from..).unwrap_or_default().iter().cloned());
        None
    }

    fn short_spec(&self, c: u8) -> Option<bool> {
        if c == b':' || c == b';' {
            return None;
        }
        let i = self.shorts.iter().position(|&s| s == c)?;
        Some(self.shorts.get(i + 1) == Some(&b':'))
    }

    fn long(&mut self, body: Vec<u8>) -> Event {
        let (name, value) = match body.iter().position(|&b| b == b'=') {
            Some(i) => (&body[..i], Some(body[i + 1..].to_vec())),
            None => (&body[..], None),
        };
        self.optind += 1;
        let exact = self.longs.iter().find(|o| o.name.as_bytes() == name);
        let found = match exact {
            Some(o) => *o,
            None => {
                let matches: Vec<&LongOpt> = self
                    .longs
                    .iter()
                    .filter(|o| o.name.as_bytes().starts_with(name))
                    .collect();
                match matches.as_slice() {
                    [] => {
                        let mut m = b": unrecognized option '--".to_vec();
                        m.extend_from_slice(&body);
                        m.extend_from_slice(b"'\n");
                        return Event::Error(m);
                    }
                    [one] => **one,
                    [first, rest @ ..] => {
                        let same = rest
                            .iter()
                            .all(|o| o.has_arg == first.has_arg && o.val == first.val);
                        if same {
                            **first
                        } else {
                            let mut m = b": option '--".to_vec();
                            m.extend_from_slice(&body);
                            m.extend_from_slice(b"' is ambiguous; possibilities:");
                            for o in &matches {
                                m.extend_from_slice(format!(" '--{}'", o.name).as_bytes());
                            }
                            m.push(b'\n');
                            return Event::Error(m);
                        }
                    }
                }
            }
        };
        match value {
            Some(v) if found.has_arg => Event::Opt(found.val, Some(v)),
            Some(_) => Event::Error(
                format!(": option '--{}' doesn't allow an argument\n", found.name).into_bytes(),
            ),
            None if found.has_arg => match self.args.get(self.optind) {
                Some(a) => {
                    let a = a.clone();
                    self.optind += 1;
                    Event::Opt(found.val, Some(a))
                }
                None => Event::Error(
                    format!(": option '--{}' requires an argument\n", found.name).into_bytes(),
                ),
            },
            None => Event::Opt(found.val, None),
        }
    }
}

impl Iterator for Getopt<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        if let Some((arg, pos)) = self.next_char.take() {
            let word = &self.args[arg];
            let c = word[pos];
            let last = pos + 1 >= word.len();
            if last {
                self.optind = arg + 1;
            } else {
                self.next_char = Some((arg, pos + 1));
            }
            return Some(match self.short_spec(c) {
                None => {
                    let mut m = b": invalid option -- '".to_vec();
                    m.push(c);
                    m.extend_from_slice(b"'\n");
                    Event::Error(m)
                }
                Some(false) => Event::Opt(c, None),
                Some(true) => {
                    self.next_char = None;
                    if !last {
                        self.optind = arg + 1;
                        Event::Opt(c, Some(word[pos + 1..].to_vec()))
                    } else if let Some(a) = self.args.get(arg + 1) {
                        let a = a.clone();
                        self.optind = arg + 2;
                        Event::Opt(c, Some(a))
                    } else {
                        let mut m = b": option requires an argument -- '".to_vec();
                        m.push(c);
                        m.extend_from_slice(b"'\n");
                        Event::Error(m)
                    }
                }
            });
        }
        // Find the next option word, skipping (permuting past) operands.
        loop {
            let Some(word) = self.args.get(self.optind) else {
                self.done = true;
                return None;
            };
            if word.as_slice() == b"--" {
                return self.end_with_rest(self.optind + 1);
            }
            if word.len() < 2 || word[0] != b'-' {
                if self.posixly_correct {
                    return self.end_with_rest(self.optind);
                }
                self.operands.push(word.clone());
                self.optind += 1;
                continue;
            }
            if word[1] == b'-' {
                let body = word[2..].to_vec();
                return Some(self.long(body));
            }
            self.next_char = Some((self.optind, 1));
            return self.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONGS: &[LongOpt] = &[
        LongOpt {
            name: "list",
            has_arg: false,
            val: b'l',
        },
        LongOpt {
            name: "list-each",
            has_arg: false,
            val: b'L',
        },
        LongOpt {
            name: "addr",
            has_arg: true,
            val: b'a',
        },
    ];

    #[test]
    fn operands_are_permuted_to_the_end() {
        let a: Vec<OsString> = ["in", "-l", "out", "--", "-a"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut g = Getopt::new(&a, b"lLa:F:", LONGS, false);
        assert_eq!(g.by_ref().collect::<Vec<_>>(), vec![Event::Opt(b'l', None)]);
        assert_eq!(
            g.operands(),
            [b"in".to_vec(), b"out".to_vec(), b"-a".to_vec()]
        );
        let mut g = Getopt::new(&a, b"lLa:F:", LONGS, true);
        assert_eq!(g.by_ref().count(), 0);
        assert_eq!(g.operands().len(), 5);
    }

    fn run(args: &[&str]) -> Vec<Event> {
        let a: Vec<OsString> = args.iter().map(OsString::from).collect();
        Getopt::new(&a, b"lLa:F:", LONGS, false).collect()
    }

    #[test]
    fn bundles_prefixes_and_errors() {
        assert_eq!(
            run(&["x", "-lF", "f", "-a1", "--ad=2", "--addr", "3", "--", "-l"]),
            vec![
                Event::Opt(b'l', None),
                Event::Opt(b'F', Some(b"f".to_vec())),
                Event::Opt(b'a', Some(b"1".to_vec())),
                Event::Opt(b'a', Some(b"2".to_vec())),
                Event::Opt(b'a', Some(b"3".to_vec())),
            ]
        );
        assert_eq!(
            run(&["--li"]),
            vec![Event::Error(
                b": option '--li' is ambiguous; possibilities: '--list' '--list-each'\n".to_vec()
            )]
        );
        assert_eq!(
            run(&["-z"]),
            vec![Event::Error(b": invalid option -- 'z'\n".to_vec())]
        );
        assert_eq!(
            run(&["-a"]),
            vec![Event::Error(
                b": option requires an argument -- 'a'\n".to_vec()
            )]
        );
        assert_eq!(
            run(&["--list=3"]),
            vec![Event::Error(
                b": option '--list' doesn't allow an argument\n".to_vec()
            )]
        );
    }
}
