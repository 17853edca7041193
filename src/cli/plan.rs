//! `nightshift plan WINDOW`: the change plan for the window's next
//! opening, now — every job read-only, what would change device by
//! device — kept in the history (drift protection compares the window's
//! devices with it) and, with `--mail`, mailed.

use std::path::Path;
use std::process::ExitCode;

use super::run::{OutputArgs, execute};
use super::{EXIT_INVALID, load_config};
use crate::clock::Clock;
use crate::planning::run_plan;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The window to plan, as named in the config ([windows.NAME])
    window: String,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn plan(path: &Path, args: &PlanArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let Some(w) = config.window(&args.window) else {
        let names: Vec<&str> = config.windows.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "nightshift plan: no window \"{}\" in {} (windows: {})",
            args.window,
            path.display(),
            names.join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let Some(opening) = w.schedule.next_after(clock.now()) else {
        eprintln!("nightshift plan: window {} never opens again", args.window);
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let run_id = crate::daemon::policy::run_id(&w.name, opening);
    let plan = run_plan(&config, w, &run_id);
    if plan.jobs.is_empty() {
        eprintln!(
            "nightshift plan: window {} has only POTS jobs: a test call is not a read, so there is nothing to plan",
            args.window
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "nightshift plan: window {} opens {}; reading every device, changing nothing",
        w.name,
        opening
            .with_timezone(&w.zone())
            .format("%a %Y-%m-%d %H:%M %Z")
    );
    let output = args.output.output("plan", Some((w.name.clone(), opening)));
    execute(config.clone(), plan, &output, clock)
}
