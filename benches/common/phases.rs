//! `--phases` for the engine bench: where each device's time goes, from the
//! library's own debug events (`device started`, `key exchange done`,
//! `through the login gate`, `authenticated`, `prompt found`, `enabled`,
//! `answered` per command, `logged out`, `device done`), stamped as they
//! are emitted. Costs ~1 µs per event, ~30 events per device.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

pub type Log = Arc<Mutex<Vec<(String, String, Instant)>>>;

/// Starts recording; read the log with [`report`] after the run.
pub fn record() -> Log {
    let log: Log = Arc::default();
    let targets = Targets::new()
        .with_target("nightshift::device", Level::TRACE)
        .with_target("nightshift::engine", Level::DEBUG);
    tracing_subscriber::registry()
        .with(Phases(log.clone()).with_filter(targets))
        .init();
    log
}

struct Phases(Log);

#[derive(Default)]
struct Fields {
    device: Option<String>,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "device" {
            self.device = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "device" => self.device = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Phases {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let at = Instant::now();
        let mut f = Fields::default();
        event.record(&mut f);
        if let Some(device) = f.device {
            self.0.lock().unwrap().push((device, f.message, at));
        }
    }
}

/// Per phase (from one event of a device to its next), mean, median and
/// 90th percentile in ms for: devices alone (before `t0`), the first wave
/// (the first `wave` devices started after `t0`) and the later devices;
/// then each wave's start and end spread, and the tail: how much later the
/// last device ended than the devices' summed time ÷ `wave`.
pub fn report(log: &Log, t0: Instant, wave: usize) -> String {
    let log = log.lock().unwrap();
    let mut by_device: HashMap<&str, Vec<(&str, Instant)>> = HashMap::new();
    for (d, m, at) in log.iter() {
        by_device.entry(d).or_default().push((m, *at));
    }
    let mut alone = Vec::new();
    let mut run: Vec<(Instant, &str)> = Vec::new();
    for (d, ev) in &by_device {
        let start = ev.first().unwrap().1;
        if start < t0 {
            alone.push(*d);
        } else {
            run.push((start, d));
        }
    }
    run.sort();
    let first: Vec<&str> = run.iter().take(wave).map(|(_, d)| *d).collect();
    let later: Vec<&str> = run.iter().skip(wave).map(|(_, d)| *d).collect();
    let mut out = String::new();
    for (label, devices) in [("alone", &alone), ("first wave", &first), ("later", &later)] {
        if devices.is_empty() {
            continue;
        }
        writeln!(
            out,
            "  phases, {label} ({} devices), ms: mean  p50  p90",
            devices.len()
        )
        .unwrap();
        let mut order: Vec<String> = Vec::new();
        let mut spans: HashMap<String, Vec<f64>> = HashMap::new();
        for d in devices {
            let ev = &by_device[d];
            let mut n = 0;
            let mut prev: Option<(String, Instant)> = None;
            for (m, at) in ev {
                let name = if *m == "answered" {
                    n += 1;
                    format!("command {n}")
                } else {
                    m.to_string()
                };
                if let Some((p, t)) = &prev {
                    let key = format!("{p} -> {name}");
                    if !spans.contains_key(&key) {
                        order.push(key.clone());
                    }
                    spans
                        .entry(key)
                        .or_default()
                        .push((*at - *t).as_secs_f64() * 1e3);
                }
                prev = Some((name, *at));
            }
            let whole = (ev.last().unwrap().1 - ev[0].1).as_secs_f64() * 1e3;
            spans.entry("whole device".into()).or_default().push(whole);
        }
        order.push("whole device".into());
        for key in order {
            let mut v = spans.remove(&key).unwrap_or_default();
            if v.len() * 10 < devices.len() {
                continue; // a path few devices took
            }
            v.sort_by(f64::total_cmp);
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            writeln!(
                out,
                "    {key:<46} {mean:7.1} {:7.1} {:7.1}",
                v[v.len() / 2],
                v[v.len() * 9 / 10]
            )
            .unwrap();
        }
    }
    let ends: Vec<(f64, f64)> = run
        .iter()
        .map(|(s, d)| {
            let e = by_device[d].last().unwrap().1;
            ((*s - t0).as_secs_f64(), (e - t0).as_secs_f64())
        })
        .collect();
    for (w, chunk) in ends.chunks(wave).enumerate() {
        let starts = chunk.iter().map(|c| c.0);
        let mut e: Vec<f64> = chunk.iter().map(|c| c.1).collect();
        e.sort_by(f64::total_cmp);
        writeln!(
            out,
            "  wave {w}: starts {:.2}–{:.2} s, ends median {:.2} s, last {:.2} s",
            starts.clone().fold(f64::MAX, f64::min),
            starts.fold(0.0, f64::max),
            e[e.len() / 2],
            e[e.len() - 1]
        )
        .unwrap();
    }
    let slots = wave.min(ends.len()).max(1);
    let busy: f64 = ends.iter().map(|(s, e)| e - s).sum::<f64>() / slots as f64;
    let last = ends.iter().map(|c| c.1).fold(0.0, f64::max);
    writeln!(
        out,
        "  devices' time / concurrency {busy:.2} s, last end {last:.2} s: tail {:.2} s",
        last - busy
    )
    .unwrap();
    out
}
