//! A POTS job inside a run: every call of the job over its dialers' line
//! pools, recorded like any device.

use super::*;

impl Engine {
    pub(super) async fn pots_job(
        &self,
        job: &Job,
        plan: &RunPlan,
        state: &Arc<RunState>,
        lines: &[crate::config::PotsLine],
        guard: std::time::Duration,
    ) -> JobReport {
        let mut devices = Vec::new();
        let mut links = BTreeMap::new();
        let mut calls_done: Vec<serde_json::Value> = Vec::new();
        let mut dialers = Vec::new();
        for i in self.targets(job, plan) {
            let d = &self.config.devices[i];
            if let Some(r) = self.settled(state, &job.name, i).await {
                calls_done.extend(r.detail_value().as_array().cloned().unwrap_or_default());
                devices.push(r);
                continue;
            }
            if let Some((status, why)) = self.refusal(job, state) {
                devices.push(
                    self.finish(state, &job.name, DeviceRecord::plain(&d.name, status, why))
                        .await,
                );
                continue;
            }
            if let Some(l) = self.links.get(&i) {
                links.insert(d.name.clone(), l.clone());
                dialers.push(d.name.clone());
                state
                    .journal
                    .record(&Event::Started {
                        job: job.name.clone(),
                        device: d.name.clone(),
                        at: self.clock.now(),
                    })
                    .await;
            }
        }
        let calls: Vec<_> = lines
            .iter()
            .filter(|l| dialers.contains(&l.dialer))
            .cloned()
            .collect();
        let deadline = state.deadline.map(|d| {
            std::time::Instant::now() + (d - self.clock.now()).to_std().unwrap_or_default()
        });
        let results = run_pots(
            Arc::new(calls),
            links,
            job.concurrency,
            guard,
            deadline,
            self.stop.clone(),
        )
        .await;
        for dialer in dialers {
            let mine: Vec<serde_json::Value> = results
                .iter()
                .filter(|r| r.dialer == dialer)
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect();
            let unreachable = results.iter().filter(|r| r.dialer == dialer).all(|r| {
                r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("unreachable") || e.contains("not tried"))
            });
            let (status, reason) = if unreachable && !mine.is_empty() {
                (
                    "failed",
                    results
                        .iter()
                        .find(|r| r.dialer == dialer)
                        .and_then(|r| r.error.clone()),
                )
            } else {
                ("done", None)
            };
            calls_done.extend(mine.iter().cloned());
            let record = DeviceRecord {
                device: dialer.clone(),
                status: status.into(),
                reason,
                detail: serde_json::value::to_raw_value(&mine).ok(),
                stopped: false,
            };
            devices.push(self.finish(state, &job.name, record).await);
        }
        let order: Vec<&str> = lines.iter().map(|l| l.branch.as_str()).collect();
        calls_done.sort_by_key(|c| {
            order
                .iter()
                .position(|b| c["branch"] == *b)
                .unwrap_or(usize::MAX)
        });
        let by_inventory = |r: &DeviceRecord| {
            self.config
                .devices
                .iter()
                .position(|d| d.name == r.device)
                .unwrap_or(usize::MAX)
        };
        devices.sort_by_key(by_inventory);
        JobReport {
            name: job.name.clone(),
            kind: "pots".into(),
            devices,
            calls: calls_done,
            held: None,
        }
    }
}
