//! A real SMTP server (aiosmtpd, installed by `.ci/peers.sh`) with STARTTLS
//! and AUTH, and a CA made with openssl for this test only.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SMTP_USER: &str = "report";
pub const SMTP_PASSWORD: &str = "Smtp-Pass-9";

pub struct SmtpPeer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/test` (it installs aiosmtpd)",
        p.display()
    );
    p
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (installed by .ci/peers.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a leaf for localhost/127.0.0.1 in `dir/tls`; returns the CA path.
pub fn make_tls(dir: &Path) -> PathBuf {
    let tls = dir.join("tls");
    if tls.join("cert.pem").exists() {
        return tls.join("ca.pem");
    }
    std::fs::create_dir_all(&tls).unwrap();
    openssl(
        &tls,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=nightshift-test-ca",
        ],
    );
    openssl(
        &tls,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(tls.join("leaf.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        &tls,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    );
    tls.join("ca.pem")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpPeer {
    /// Starts the server in `mode` (auth, reject, defer) on `port` (0: any free one).
    pub fn start(dir: &Path, mode: &str, port: u16) -> SmtpPeer {
        make_tls(dir);
        let port = if port == 0 { free_port() } else { port };
        let maildir = dir.join("Maildir");
        let tls = dir.join("tls");
        let mut child = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smtp_peer.py"))
            .arg(&maildir)
            .arg(tls.join("cert.pem"))
            .arg(tls.join("key.pem"))
            .arg(port.to_string())
            .args([SMTP_USER, SMTP_PASSWORD, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the SMTP peer starts within 30 s");
        assert_eq!(line.trim(), "ready", "SMTP peer said {line:?}");
        SmtpPeer {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// The messages received, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        Self::messages_in(&self.dir)
    }

    /// The messages a peer kept in `dir`, even after it stopped.
    pub fn messages_in(dir: &Path) -> Vec<String> {
        let new = dir.join("Maildir/new");
        let Ok(rd) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut out: Vec<String> = rd
            .flatten()
            .map(|f| std::fs::read_to_string(f.path()).unwrap())
            .collect();
        out.sort();
        out
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `[mail]` section for this peer.
    pub fn mail_section(&self, to: &str) -> String {
        format!(
            "[mail]\nrelay = \"localhost\"\nport = {}\ntls = \"starttls\"\nfrom = \"nightshift@example.test\"\nto = [\"{to}\"]\nusername = \"{SMTP_USER}\"\ntimeout = \"5s\"\nca_file = \"{}\"\n\n",
            self.port,
            self.ca().display()
        )
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stores the relay's password for `config` in the keyring (proved with
/// one login to the relay); the command must succeed.
pub fn set_mail_password(config: &Path) {
    let out = super::ns(
        config,
        &[
            "credentials",
            "set",
            "--mail",
            "--store",
            "keyring",
            "--password-stdin",
        ],
        &format!("{SMTP_PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", super::text(&out));
}

/// Removes a test's relay password (keyring service `.0`) when dropped.
pub struct ForgetMailPassword(pub String);

impl Drop for ForgetMailPassword {
    fn drop(&mut self) {
        let _ = Command::new("keyctl")
            .args(["purge", "user", &format!("keyring-rs:mail@{}", self.0)])
            .output();
    }
}
