//! `nightshift demo`: a whole change window against the embedded lab,
//! with nothing to install or configure. Starts the lab in-process,
//! proves the demo credentials with one canary login, runs the window's
//! ACL push and POTS line tests now, prints the report and keeps the mail
//! it would send in an outbox (or sends it to a loopback relay).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::credentials::{self, Credentials};
use crate::engine::{Engine, Progress, RunPlan};
use crate::jobs::fleet;
use crate::lab::{Fault, Lab, LabSpec};
use crate::report::outbox::{Delivery, Outbox, mail_report};
use crate::report::{Report, render_html, render_text};

/// The demo fleet's password: these are the "demo credentials".
const DEMO_PASSWORD: &str = "demo-Pass-1";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to keep the demo's state: journal, run history, outbox, report.html
    #[arg(long, value_name = "DIR", default_value = "nightshift-demo")]
    dir: PathBuf,
    /// Also send the mail, as plain SMTP to a relay on loopback (e.g. 127.0.0.1:2525)
    #[arg(long, value_name = "HOST:PORT")]
    mail: Option<String>,
    /// With --mail: the recipient
    #[arg(long, value_name = "ADDR", default_value = "netops@example.test")]
    to: String,
}

/// The lab the demo runs on: IOS closet switches (tier 1), NX-OS
/// distribution switches (tier 2), a dialer hub with 8 modem lines and 36
/// branches, and faults so that failures show.
fn demo_lab() -> anyhow::Result<LabSpec> {
    let faults = [
        "reject:ios-005:2", // a line the device refuses: rolled back
        "refuse:ios-011",   // unreachable
        "legacy:ios-003",   // old IOS: SHA-1 key exchange only, reached with the legacy profile
        "drop:nxos-004:3",  // the session drops mid-change: restored
    ]
    .iter()
    .map(|f| f.parse::<Fault>().map_err(|e| anyhow::anyhow!("{e}")))
    .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LabSpec {
        ios: 12,
        nxos: 6,
        dialer_lines: 8,
        branches: 36,
        latency: Duration::from_millis(20),
        // Modem calls at 1/50 of real time: a 40 s call takes under a second.
        time_scale: 0.02,
        password: DEMO_PASSWORD.into(),
        faults,
        ..LabSpec::default()
    })
}

pub fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(true)?;
    runtime.block_on(run_demo(args))
}

async fn run_demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let clock = SystemClock;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let lab = Lab::start(demo_lab()?)
        .await
        .context("cannot start the lab")?;
    eprintln!(
        "nightshift demo: lab up on 127.0.0.1: 12 IOS closet switches (tier 1), 6 NX-OS distribution switches (tier 2), a dialer hub with 8 modem lines, 36 branches"
    );
    let config_path = dir.join("demo.toml");
    lab.write_config(&config_path)
        .context("cannot write the demo config")?;
    let mut text = std::fs::read_to_string(&config_path)?;
    text = text.replace(
        "[daemon]\n",
        "[daemon]\nkeyring_service = \"nightshift-demo\"\n",
    );
    if let Some(relay) = &args.mail {
        let (host, port) = relay
            .rsplit_once(':')
            .context("--mail takes HOST:PORT, e.g. 127.0.0.1:2525")?;
        text = text.replace(
            "[credentials.lab]",
            &format!(
                "[mail]\nrelay = \"{host}\"\nport = {port}\ntls = \"none\"\nfrom = \"nightshift-demo@example.test\"\nto = [\"{}\"]\n\n[credentials.lab]",
                args.to
            ),
        );
    }
    text = text.replace("[windows.nightly]", "[windows.demo]");
    std::fs::write(&config_path, &text)?;
    let config = match Config::load(&config_path, clock.now()) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            lab.shutdown().await;
            return Err(anyhow::Error::new(e).context("the demo config is invalid (a bug)"));
        }
    };
    eprintln!("nightshift demo: config {}", config_path.display());

    // The demo credentials, proved with exactly one login to the canary.
    let creds = Credentials {
        username: "admin".into(),
        password: SecretString::from(DEMO_PASSWORD),
        enable_secret: Some(SecretString::from(DEMO_PASSWORD)),
    };
    let proof = match credentials::prove(&config, "lab", &creds).await {
        Ok(p) => p,
        Err(e) => {
            lab.shutdown().await;
            return Err(anyhow::Error::new(e).context("the demo credentials were not accepted"));
        }
    };
    eprintln!(
        "nightshift demo: credentials proved with one login to the canary {}",
        proof.canary
    );

    let window = config.window("demo").context("the demo window")?.clone();
    let targets = config.targets_of(&window.jobs);
    let logins = [("lab".to_string(), creds.login())].into_iter().collect();
    let links = fleet::links(&config, &targets, &logins)?;
    let now = clock.now();
    let end = now + chrono::Duration::from_std(window.duration).unwrap_or_default();
    let plan = RunPlan {
        run_id: format!("demo-{}", now.format("%Y%m%dT%H%M%SZ")),
        window: Some("demo".into()),
        jobs: window.jobs.clone(),
        deadline: Some(end),
        dry_run: false,
        only: None,
        ..RunPlan::default()
    };
    eprintln!(
        "nightshift demo: window demo opens now: jobs {}",
        window.jobs.join(", ")
    );
    let engine = Engine {
        config: config.clone(),
        links: Arc::new(links),
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    };
    let ticker_stop = CancellationToken::new();
    let ticker = tokio::spawn(crate::engine::show_progress(
        engine.progress.clone(),
        ticker_stop.clone(),
    ));
    let result = engine.run(&plan).await;
    ticker_stop.cancel();
    let _ = ticker.await;
    let stats = lab.stats();
    lab.shutdown().await;
    let run = result?;

    let report = Report::new(&config, &run, Some((now, end)));
    println!("{}", render_text(&report, true));
    report.save(&config.daemon.state_dir)?;
    let html = dir.join("report.html");
    std::fs::write(&html, render_html(&report))?;
    let store = crate::credentials::Store::from_env(&config.daemon.keyring_service);
    let mailed = mail_report(&config, &store, &report, clock.now()).await?;
    for d in &mailed.deliveries {
        if let Delivery::Retry(_, e) | Delivery::Failed(_, e) = d {
            eprintln!("nightshift demo: the mail was not sent: {e} (kept in the outbox)");
        }
    }
    let entry = mailed.entry;
    let outbox = Outbox::new(&config.daemon.state_dir);
    let unprotected: u64 = stats.devices.iter().map(|d| d.unprotected_ms).sum();
    eprintln!("nightshift demo: {}", report.subject());
    eprintln!(
        "nightshift demo: lab says: {} logins, {} rejected, {} ms with an interface unfiltered",
        stats.devices.iter().map(|d| d.logins).sum::<u64>(),
        stats.auth_failures,
        unprotected
    );
    eprintln!(
        "nightshift demo: the mail {} ({:?}) is in {}; the HTML report is {}",
        entry.id,
        entry.state,
        outbox.dir().display(),
        html.display()
    );
    eprintln!(
        "nightshift demo: done in {:.1} s; nothing is left running",
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
