//! `nightshift lab`: serve the simulated fleet in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::lab::{Fault, Lab, LabSpec};

const FAULT_HELP: &str = "\
Faults (--fault KIND:DEVICE[:ARG], repeatable):
  auth:DEV          the password is always rejected
  enable:DEV        the enable secret is always refused
  refuse:DEV        connections are refused
  hang:DEV          login succeeds but no prompt ever comes
  drop:DEV:N        the connection drops after N config lines
  reject:DEV:N      config line N (over the device's life) gets `% Invalid input`
  slow:DEV:DUR      DUR extra per command (e.g. slow:ios-003:2s)
  legacy:DEV        only diffie-hellman-group14-sha1/group1-sha1, ssh-rsa,
                    aes128-cbc/aes256-cbc/3des-cbc, hmac-sha1
  kbdint:DEV        only keyboard-interactive login is offered
  slowauth:DEV      the password is never answered (an AAA server that is down)
  lockout:N         the account locks after N failed logins on any device
                    (as TACACS does fleet-wide); also lockout:*:N
  stuck:hub-1:LINE  modem line LINE starts held by a session that is gone
  checkpoint-busy:DEV  NX-OS refuses `no checkpoint` (another checkpoint or
                    rollback operation is in progress)
  checkpoints:DEV:N NX-OS starts with N user checkpoints of others (10 is the limit)

Devices: ios-001…, nxos-001…, and hub-1 when --dialer-lines > 0. User `admin`,
password and enable secret from --password. IOS lands in `>` (enable needed;
privileged commands such as `show running-config` are refused there, as on
IOS), NX-OS in `#`. IOS keeps no duplicate ACL entry: an entry that matches
an existing one under another sequence number is accepted and changes
nothing; an existing sequence number is refused (`% Duplicate sequence
number`). NX-OS checkpoint names are at most 32 characters, ten per switch.

Modem lines: hub-1 lines 33…(33+L-1), reached from hub-1's prompt with
`telnet <lab host> 20NN` (NN = line). Branch `branch-NNN` has number 555NNNN:
  NNN % 50 == 23 → NO DIALTONE after 2 s
  NNN % 10 == 4  → BUSY after 6 s
  NNN % 10 == 7  → NO ANSWER after 40 s
  NNN % 25 == 9  → NO CARRIER after S7 (50 s)
  NNN % 20 == 13 → CONNECT, but the branch router never prompts
  otherwise      → CONNECT 33600/ARQ/V34/LAPM/V42BIS after 15 + (NNN×37 mod 46) s,
                   then `User Access Verification` / `Username:`
All modem, revert-timer and reload delays are multiplied by --time-scale.
A session that ends without `exit` while holding a line leaves it stuck
until `clear line N`.";

#[derive(Debug, clap::Args)]
#[command(after_help = FAULT_HELP)]
pub struct LabArgs {
    /// IOS devices (tier 1)
    #[arg(long, default_value_t = 4)]
    ios: usize,
    /// NX-OS devices (tier 2)
    #[arg(long, default_value_t = 2)]
    nxos: usize,
    /// Modem lines on the dialer hub hub-1 (0: no hub)
    #[arg(long, default_value_t = 8)]
    dialer_lines: u32,
    /// Branch phone numbers the modems can dial
    #[arg(long, default_value_t = 24)]
    branches: u32,
    /// Round-trip time of the link to each device, with ±20% jitter: input
    /// reaches a device this long after it was sent, so lines sent together
    /// pay it once (e.g. 50ms)
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Multiplies modem, revert-timer and reload delays (e.g. 0.01 in tests)
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Password and enable secret of user `admin` (lab only; never a real one)
    #[arg(
        long,
        env = "NIGHTSHIFT_LAB_PASSWORD",
        default_value = "lab",
        hide_env_values = true
    )]
    password: String,
    /// Loopback address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// First port (device N gets PORT+N); default: ports chosen by the OS
    #[arg(long)]
    base_port: Option<u16>,
    /// Inject a fault (see below); repeatable
    #[arg(long = "fault", value_name = "KIND:DEVICE[:ARG]")]
    faults: Vec<Fault>,
    /// Write a nightshift config for this fleet (host keys go to FILE.known_hosts)
    #[arg(long, value_name = "FILE")]
    write_config: Option<PathBuf>,
    /// Write the lab's observations as JSON when it exits
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

pub fn lab(args: &LabArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(true)?;
    runtime.block_on(serve(args))
}

async fn serve(args: &LabArgs) -> anyhow::Result<ExitCode> {
    if args.time_scale <= 0.0 || !args.time_scale.is_finite() {
        anyhow::bail!("--time-scale must be a positive number, e.g. 0.01");
    }
    let spec = LabSpec {
        ios: args.ios,
        nxos: args.nxos,
        dialer_lines: args.dialer_lines,
        branches: args.branches,
        latency: args.latency,
        time_scale: args.time_scale,
        password: args.password.clone(),
        host: args.host,
        base_port: args.base_port,
        faults: args.faults.clone(),
        authorized_keys: Vec::new(),
    };
    let lab = Lab::start(spec).await.context("while starting the lab")?;
    if let Some(path) = &args.write_config {
        lab.write_config(path)
            .with_context(|| format!("while writing {}", path.display()))?;
        eprintln!(
            "nightshift lab: config for this fleet written to {}",
            path.display()
        );
    }
    for d in lab.devices() {
        println!("{:<12} {:<10} {}", d.name, d.platform, d.addr);
    }
    eprintln!(
        "nightshift lab: {} devices on {}; Ctrl-C or SIGTERM to stop",
        lab.devices().len(),
        lab.host()
    );
    wait_for_stop().await?;
    if let Some(path) = &args.stats {
        lab.write_stats(path)
            .with_context(|| format!("while writing {}", path.display()))?;
    }
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
