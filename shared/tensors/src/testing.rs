//! Test support (cargo feature `testing`): a throwaway `redis-server` per test.
//!
//! ```no_run
//! # async fn demo() {
//! use storyreel_tensors::{open_store, testing::RedisServer};
//! let redis = RedisServer::start().expect("redis-server");
//! let store = open_store(&redis.store_config()).await.unwrap();
//! # }
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::StoreConfig;

/// How long `start` waits for the server to answer PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A `redis-server` on 127.0.0.1 and a free port, persistence off, in a temp dir. Killed
/// and reaped on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    password: Option<String>,
    /// CA certificate when the server speaks TLS only.
    ca_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start a server without AUTH.
    pub fn start() -> io::Result<Self> {
        Self::start_inner(None, false)
    }

    /// Start a server that requires `password` (`--requirepass`).
    pub fn start_with_password(password: &str) -> io::Result<Self> {
        Self::start_inner(Some(password.to_string()), false)
    }

    /// Start a TLS-only server with a throwaway CA and certificate for 127.0.0.1, made
    /// with the `openssl` command. Connecting needs the crate feature `tls`.
    pub fn start_tls() -> io::Result<Self> {
        Self::start_inner(None, true)
    }

    /// The CA certificate (PEM) of a [`Self::start_tls`] server.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    /// `redis://127.0.0.1:PORT` (no credentials: see [`Self::password`]).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// A Redis-backend config pointing here, with the password set.
    pub fn store_config(&self) -> StoreConfig {
        let mut cfg = StoreConfig::redis(self.url());
        cfg.redis.password = self.password.clone();
        cfg.redis.tls = self.ca_file.is_some();
        cfg.redis.ca_file = self.ca_file.clone();
        cfg
    }

    fn start_inner(password: Option<String>, tls: bool) -> io::Result<Self> {
        // The free port can be taken between our probe and the server's bind: retry.
        let mut last = io::Error::other("not started");
        for _ in 0..3 {
            match Self::try_start(password.clone(), tls) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_start(password: Option<String>, tls: bool) -> io::Result<Self> {
        let port = free_port()?;
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(binary());
        if tls {
            make_certs(dir.path())?;
            let file = |name: &str| dir.path().join(name);
            cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(file("server.pem"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {} ({e}); install redis-server (apt-get install redis-server) \
                     or set REDIS_SERVER_BIN",
                    binary().display()
                ),
            )
        })?;
        // From here the guard kills the child on any early return.
        let mut server = RedisServer {
            child,
            port,
            password,
            ca_file: tls.then(|| dir.path().join("ca.pem")),
            _dir: dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited early: {status}",
                    self.port
                )));
            }
            let ready = if self.ca_file.is_some() {
                // No TLS client here: a listening port is the readiness signal.
                TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port))).is_ok()
            } else {
                ping(self.port, self.password.as_deref()).is_ok()
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `REDIS_SERVER_BIN`, else `redis-server` on PATH.
fn binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// A CA and a server certificate for 127.0.0.1 (rustls wants a real CA chain with SANs).
fn make_certs(dir: &std::path::Path) -> io::Result<()> {
    let ext = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
               extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::fs::write(dir.join("ext.cnf"), ext)?;
    // No argument contains a space, so each step is one whitespace-separated line.
    const STEPS: [&str; 3] = [
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
         -out ca.pem -days 2 -subj /CN=storyreel-test-ca \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
         -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile ext.cnf",
    ];
    for step in STEPS {
        let out = Command::new("openssl")
            .args(step.split_whitespace())
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run openssl ({e}); apt-get install openssl"),
                )
            })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "openssl {} failed: {}",
                step.split_whitespace().next().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A raw RESP PING (optionally after AUTH), so readiness needs no async runtime.
fn ping(port: u16, password: Option<&str>) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut req = Vec::new();
    if let Some(pw) = password {
        req.extend(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len()).into_bytes());
    }
    req.extend(b"*1\r\n$4\r\nPING\r\n");
    s.write_all(&req)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while !reply.windows(5).any(|w| w == b"+PONG") {
        let n = s.read(&mut buf)?;
        if n == 0 || reply.len() > 1024 || reply.starts_with(b"-") {
            return Err(io::Error::other("no PONG"));
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Ok(())
}
