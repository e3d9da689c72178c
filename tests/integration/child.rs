//! The real `surge` binary as a child process, for tests that kill it,
//! signal it or limit it (crash, faults).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real binary as a child process.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

/// Starts `surge serve` on `data`, with `env` as config, under `prlimit
/// --nofile=N:N` when `nofile` is given.
pub fn spawn(data: &Path, log_dir: &Path, env: &[(&str, &str)], nofile: Option<u64>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = log_dir.join(format!("server-{port}.log"));
    let bin = env!("CARGO_BIN_EXE_surge");
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
            c
        }
        None => Command::new(bin),
    };
    // The server reads every SURGE_* variable as config and refuses unknown
    // ones: keep the test's own away from it.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SURGE_")) {
        cmd.env_remove(key);
    }
    cmd.args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SURGE_LOG", "info")
        .env("SURGE_HTTP_WORKERS", "1")
        .env("SURGE_ACTOR_THREADS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited with {status}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not become ready: {}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
