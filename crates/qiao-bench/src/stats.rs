//! Latency histograms and the machine description printed with every report.

use std::time::Duration;

use hdrhistogram::Histogram;

pub struct Latency(Histogram<u64>);

/// Longest latency recorded as itself (an hour, in microseconds: no run is that long).
const MAX_US: u64 = 3_600_000_000;

impl Latency {
    pub fn new() -> Latency {
        Latency(Histogram::new_with_bounds(1, MAX_US, 3).expect("histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_US);
        let _ = self.0.record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    /// Non-empty buckets as (microseconds, count), to send between processes.
    pub fn samples(&self) -> Vec<(u64, u64)> {
        self.0.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }

    /// Adds samples from [`Latency::samples`].
    pub fn add_samples(&mut self, samples: &[(u64, u64)]) {
        for (us, n) in samples {
            let _ = self.0.record_n((*us).clamp(1, MAX_US), *n);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Milliseconds at quantile `q`.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }
}

/// CPU model and count, for reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} × {cpu}", online_cpus())
}

/// CPUs of the machine (not of this process's affinity, which a pin narrows).
pub fn online_cpus() -> usize {
    let listed = std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    if listed > 0 { listed } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
}
