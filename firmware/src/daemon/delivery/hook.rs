//! `notify.hook`: every executable regular file in the directory, in name order, run with
//! the notice in its environment ([`crate::monitor::notice::Notice::env`]: `MAILBAG_EVENT`,
//! `MAILBAG_SUBJECT`, `MAILBAG_TEXT`, …) and nothing on stdin, as OpenWrt's hotplug
//! scripts are. At most [`HOOKS_MAX`] files, each stopped (by its PID) after [`HOOK_TIMEOUT`].
//! Output goes to the daemon's own stdout/stderr (the system log under procd).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most hooks run per notice.
pub const HOOKS_MAX: usize = 16;
/// Longest a hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs every hook in `dir` (none when it does not exist); (path, result) per hook.
pub fn run_all(dir: &str, env: &[(String, String)]) -> Vec<(String, Result<(), String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_executable(p))
        .collect();
    paths.sort();
    paths.truncate(HOOKS_MAX);
    paths
        .into_iter()
        .map(|p| {
            let r = run_one(&p, env);
            (p.display().to_string(), r)
        })
        .collect()
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn run_one(path: &Path, env: &[(String, String)]) -> Result<(), String> {
    let mut child = Command::new(path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if start.elapsed() >= HOOK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {} s; stopped",
                    HOOK_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    #[test]
    fn hooks_run_in_order_with_the_event_in_their_environment() {
        let dir = std::env::temp_dir().join(format!("mailbag-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.txt");
        let script = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            "20-second",
            &format!("echo \"2 $MAILBAG_EVENT\" >> {}", out.display()),
        );
        script(
            "10-first",
            &format!(
                "echo \"1 $MAILBAG_EVENT $MAILBAG_HELD\" >> {}",
                out.display()
            ),
        );
        script("30-fails", "exit 3");
        std::fs::write(dir.join("README"), "not executable").unwrap();
        let env = vec![
            ("MAILBAG_EVENT".to_owned(), "primary-down".to_owned()),
            ("MAILBAG_HELD".to_owned(), "4".to_owned()),
        ];
        let results = run_all(dir.to_str().unwrap(), &env);
        assert_eq!(results.len(), 3, "the README is no hook");
        assert!(
            results[2]
                .1
                .as_ref()
                .unwrap_err()
                .contains("exit status: 3")
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "1 primary-down 4\n2 primary-down\n"
        );
        assert!(run_all("/nonexistent/notify.d", &env).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
