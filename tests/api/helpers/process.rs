//! The built binary, started as an operator starts it: random ports on loopback, its log
//! lines collected, stopped with a signal.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_saga-account"))
}

pub struct ServiceProcess {
    pub child: Child,
    /// `host:port` of each listener, as the start-up line logged them.
    pub http: String,
    pub grpc: String,
    pub metrics: String,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ServiceProcess {
    /// Starts `saga-account serve` in `dir` with `envs` on top of random loopback ports and
    /// waits until it logs where it listens.
    pub fn spawn(dir: &Path, envs: &[(&str, &str)]) -> ServiceProcess {
        let mut command = Command::new(binary());
        command
            .current_dir(dir)
            .envs([
                ("HTTP_PORT", "0"),
                ("GRPC_PORT", "0"),
                ("PROM_PORT", "0"),
                ("BIND_ADDRESS", "127.0.0.1"),
            ])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines) = mpsc::channel::<String>();
        let readers = [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ]
        .into_iter()
        .map(|stream| {
            let (log, lines_tx) = (log.clone(), lines_tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = lines_tx.send(line);
                }
            })
        })
        .collect();
        let listening = loop {
            match lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("listening") => break line,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the service did not start:\n{}",
                        log.lock().unwrap().join("\n")
                    )
                }
            }
        };
        let field = |name: &str| {
            listening
                .split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_else(|| panic!("{name} address in {listening:?}"))
        };
        ServiceProcess {
            http: field("http"),
            grpc: field("grpc"),
            metrics: field("metrics"),
            child,
            log,
            readers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// SIGTERM, as an orchestrator stops the service.
    pub fn sigterm(&self) {
        signal(&self.child, libc::SIGTERM);
    }

    /// SIGKILL: the process dies at once, mid-request.
    pub fn sigkill(&self) {
        signal(&self.child, libc::SIGKILL);
    }

    /// Waits for the process to exit and for its output to be read.
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().expect("wait for the service");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    /// Every line it wrote so far, stdout and stderr.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "signal delivered");
}
