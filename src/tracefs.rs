//! tracefs: a tracing [`Instance`] of our own (`instances/NAME`: its own ring buffer, events
//! and filters, so the global tracer's settings are never touched), removed on drop; and a
//! [`State`] snapshot of what a tracing user can see, for checking that nothing was left
//! behind.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to do when tracefs is missing.
pub const MOUNT_HINT: &str = "needs root and tracefs: mount -t tracefs nodev /sys/kernel/tracing \
(CONFIG_FTRACE/CONFIG_EVENT_TRACING)";

/// A tracing instance we created; removed (events off, directory gone) on drop.
#[derive(Debug)]
pub struct Instance {
    dir: PathBuf,
    removed: bool,
}

impl Instance {
    /// Create `TRACEFS/instances/NAME`. An existing one is an error (it is not ours).
    pub fn create(tracefs: &Path, name: &str) -> Result<Instance> {
        let parent = tracefs.join("instances");
        if !parent.is_dir() {
            return Err(Error::Unsupported {
                path: parent,
                what: "tracefs instances".into(),
                hint: MOUNT_HINT.into(),
            });
        }
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                "{}: a tracing instance of that name exists already (another pgtool leak \
                 --trace?); remove it with rmdir when it is stale",
                dir.display()
            )),
            _ => Error::io(&dir, e),
        })?;
        Ok(Instance {
            dir,
            removed: false,
        })
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `value` to the instance's file `rel` (a control file: no create, no truncate
    /// semantics beyond the kernel's own).
    pub fn write(&self, rel: &str, value: &str) -> Result<()> {
        write_control(&self.dir.join(rel), value)
    }

    /// True when the event `SYSTEM/EVENT` exists in this kernel.
    pub fn has_event(&self, system: &str, event: &str) -> bool {
        self.dir
            .join("events")
            .join(system)
            .join(event)
            .join("enable")
            .exists()
    }

    /// The event's `format` file (its fields).
    pub fn event_format(&self, system: &str, event: &str) -> Result<String> {
        let p = self
            .dir
            .join("events")
            .join(system)
            .join(event)
            .join("format");
        crate::text_input::read_capped(&p, 1 << 20, "a tracefs event format")
    }

    /// Turn every event of the instance off and remove the instance. Files of the instance
    /// must be closed (the kernel refuses to remove a busy instance).
    pub fn remove(mut self) -> Result<()> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let _ = write_control(&self.dir.join("tracing_on"), "0");
        let _ = write_control(&self.dir.join("events/enable"), "0");
        // EBUSY while a reader is still closing: retry briefly
        let mut last = None;
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("rmdir failed"));
        Err(Error::io_hint(
            &self.dir,
            e,
            "the tracing instance could not be removed: rmdir it by hand",
        ))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.remove_inner();
    }
}

/// Write a tracefs control file.
pub fn write_control(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// What a tracing user can see of tracefs's global state: the instances, and the global
/// instance's control files and every kmem event's enable/filter. Equal before and after a
/// run that left nothing behind.
pub fn state(tracefs: &Path) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    let inst = tracefs.join("instances");
    let mut names: Vec<String> = std::fs::read_dir(&inst)
        .map_err(|e| Error::io(&inst, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    m.insert("instances".into(), names.join(" "));
    for f in [
        "tracing_on",
        "set_event",
        "current_tracer",
        "trace_options",
        "buffer_size_kb",
        "set_event_pid",
        "events/kmem/enable",
        "events/kmem/filter",
    ] {
        let p = tracefs.join(f);
        if let Ok(t) = std::fs::read_to_string(&p) {
            m.insert(f.into(), t);
        }
    }
    if let Ok(rd) = std::fs::read_dir(tracefs.join("events/kmem")) {
        for e in rd.flatten() {
            let ev = e.file_name().to_string_lossy().into_owned();
            for f in ["enable", "filter", "trigger"] {
                if let Ok(t) = std::fs::read_to_string(e.path().join(f)) {
                    m.insert(format!("events/kmem/{ev}/{f}"), t);
                }
            }
        }
    }
    Ok(m)
}
