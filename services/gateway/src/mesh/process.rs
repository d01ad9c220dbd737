//! A child process of the mesh: its log file, a stop that asks first (SIGTERM) and then
//! insists (SIGKILL), a kill -9 for the chaos tests, and a kill on drop so that nothing
//! outlives the mesh that started it.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Process {
    pub name: String,
    pub log: PathBuf,
    command: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Process {
    /// Starts `program args...` with `env`, stdout and stderr to `log_dir/{name}.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> std::io::Result<Self> {
        let mut command = vec![program.display().to_string()];
        command.extend(args.iter().cloned());
        let mut process = Self {
            name: name.to_string(),
            log: log_dir.join(format!("{name}.log")),
            command,
            env: env.to_vec(),
            child: None,
        };
        process.start()?;
        Ok(process)
    }

    /// (Re)starts the process with the same command; the log is appended to.
    pub fn start(&mut self) -> std::io::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("starting {} ({}): {e}", self.name, self.command[0]),
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What its log says went wrong (a panic message, an error), or its last lines.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if let Some(at) = lines
            .iter()
            .position(|l| l.contains("panicked at") || l.starts_with("Error"))
        {
            return lines[at..lines.len().min(at + 8)].join("\n");
        }
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// kill -9, now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
