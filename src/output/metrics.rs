//! The one Prometheus textfile writer (the format node_exporter's textfile collector reads).
//!
//! Families carry HELP and TYPE; names carry their unit (`_pages`, `_bytes`, `_seconds`);
//! `_total` is for counters only. Labels must stay bounded: callers label by mapping name,
//! memcg path or flag set, never by PID or address unless the user asked for it. Files are
//! written atomically through [`crate::safe_file::write_atomic`].

use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A monotonic count; its name ends in `_total`.
    Counter,
}

/// One metric family: a name, help text, type and its samples.
#[derive(Clone, Debug)]
pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    /// Add a sample with these labels (name, value); a second sample with the same labels
    /// adds to the first (so callers can aggregate as they go).
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match self.samples.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, v)) => *v += value,
            None => self.samples.push((labels, value)),
        }
    }

    /// Number of samples (series).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the family has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// A set of families, rendered in the order they were created.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    families: Vec<Family>,
}

fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Metrics {
    /// An empty set.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// The family `name` (created on first use). Names and kinds are the program's own, so a
    /// bad one is a bug: it is refused with an error rather than written.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> Result<&mut Family> {
        if !valid_name(name) {
            return Err(Error::Usage(format!("internal: bad metric name {name:?}")));
        }
        let total = name.ends_with("_total");
        if total != (kind == Kind::Counter) {
            return Err(Error::Usage(format!(
                "internal: metric {name:?}: `_total` is for counters only"
            )));
        }
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        Ok(&mut self.families[i])
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for f in &self.families {
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(s, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(s, "# TYPE {} {kind}", f.name);
            for (labels, v) in &f.samples {
                s.push_str(&f.name);
                if !labels.is_empty() {
                    s.push('{');
                    for (i, (k, val)) in labels.iter().enumerate() {
                        if i > 0 {
                            s.push(',');
                        }
                        let _ = write!(s, "{k}=\"{}\"", escape_label(val));
                    }
                    s.push('}');
                }
                let _ = writeln!(s, " {}", number(*v));
            }
        }
        s
    }

    /// Write the textfile atomically (mode 0644: collectors run as other users).
    pub fn write_textfile(&self, path: &Path) -> Result<()> {
        crate::safe_file::write_atomic(
            path,
            self.render().as_bytes(),
            crate::safe_file::PUBLIC_FILE,
        )
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_escaped_labels() {
        let mut m = Metrics::new();
        let f = m
            .family("pgtool_pages", "Pages by flags.", Kind::Gauge)
            .expect("family");
        f.add(&[("flags", "lru|a\"b")], 3.0);
        f.add(&[("flags", "lru|a\"b")], 2.0);
        assert_eq!(
            m.render(),
            "# HELP pgtool_pages Pages by flags.\n# TYPE pgtool_pages gauge\npgtool_pages{flags=\"lru|a\\\"b\"} 5\n"
        );
        assert!(m.family("pgtool_pages_total", "x", Kind::Gauge).is_err());
        assert!(m.family("pgtool_runs", "x", Kind::Counter).is_err());
        assert!(m.family("9bad", "x", Kind::Gauge).is_err());
    }
}
