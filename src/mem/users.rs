//! User names for `mem`'s `user` column, without glibc's NSS.
//!
//! The shipped binary is linked statically, and a static glibc's `getpwuid` loads the host's
//! NSS modules at run time, which only works with the glibc it was built against (the linker
//! warns so). So names come from `/etc/passwd` (the "files" source, which holds every system
//! account), and the uids it lacks (directory users: LDAP, sssd) are asked of the host's own
//! `/usr/bin/getent passwd UID...` in one call, which goes through the host's NSS. A uid neither
//! knows is shown as its number. Only on a live system: a snapshot (`--root`) is shown as uids.
use std::collections::HashMap;
use std::process::{Command, Stdio};

/// `getent` by absolute path: `mem` runs as root, and a PATH lookup would run whatever a
/// writable PATH entry holds.
const GETENT: &str = "/usr/bin/getent";

/// Names for `uids` (each looked up once). Empty when not `live`.
pub fn names(uids: impl IntoIterator<Item = u32>, live: bool) -> HashMap<u32, String> {
    let mut want: Vec<u32> = uids.into_iter().collect();
    want.sort_unstable();
    want.dedup();
    let mut found = HashMap::new();
    if !live || want.is_empty() {
        return found;
    }
    if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
        merge(&mut found, &text, &want);
    }
    let rest: Vec<String> = want
        .iter()
        .filter(|u| !found.contains_key(u))
        .map(|u| u.to_string())
        .collect();
    if !rest.is_empty()
        && let Ok(out) = Command::new(GETENT)
            .arg("passwd")
            .args(&rest)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
    {
        // getent exits 2 when some key is unknown but still prints the others.
        merge(&mut found, &String::from_utf8_lossy(&out.stdout), &want);
    }
    found
}

/// Adds the first entry of each wanted uid in passwd(5) `text` (name:pw:uid:...) to `found`.
/// NIS compat lines (`+`/`-`) and malformed lines are skipped.
fn merge(found: &mut HashMap<u32, String>, text: &str, want: &[u32]) {
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(['+', '-']) {
            continue;
        }
        if let Ok(uid) = uid.parse::<u32>()
            && want.binary_search(&uid).is_ok()
        {
            found.entry(uid).or_insert_with(|| name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n+nis::::::\nbad line\n:x:5:5::/:/bin/sh\n\
                    daemon:x:1:1::/:/bin/false\nshadow0:x:0:0::/:/bin/sh\nbig:x:4294967295:0::/:x\n";
        let mut found = HashMap::new();
        merge(&mut found, text, &[0, 1, 5, 7]);
        assert_eq!(found.get(&0).map(String::as_str), Some("root"));
        assert_eq!(found.get(&1).map(String::as_str), Some("daemon"));
        assert!(!found.contains_key(&5) && !found.contains_key(&7));
        assert!(names([0], false).is_empty());
    }

    /// The live answer agrees with the host's `getent passwd` (its NSS) for every uid in
    /// /etc/passwd and for root.
    #[test]
    fn agrees_with_getent() {
        if !std::path::Path::new(GETENT).exists() {
            eprintln!("SKIP agrees_with_getent: {GETENT} is missing");
            return;
        }
        let got = names([0, 65534], true);
        for (uid, name) in &got {
            let out = Command::new(GETENT)
                .args(["passwd", &uid.to_string()])
                .output()
                .expect("run getent");
            let line = String::from_utf8_lossy(&out.stdout);
            assert_eq!(line.split(':').next(), Some(name.as_str()), "uid {uid}");
        }
        assert_eq!(got.get(&0).map(String::as_str), Some("root"));
    }
}
