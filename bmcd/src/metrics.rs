//! Prometheus metrics, written by hand in the text exposition format (0.0.4):
//! API requests and their latency, libvirt calls, rate-limit refusals, the
//! process itself, and per-VM statistics read from libvirt at scrape time.
//!
//! The counters live in one process-wide registry (like every Prometheus
//! client library's default registry): the request pipeline and the libvirt
//! worker wrapper record into it without carrying a handle. Label sets are
//! bounded: route templates (not paths), a fixed method list, status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::model::SystemStatistics;

/// Upper bounds of the latency histograms, in microseconds and as the `le`
/// label. (Everything is counted and printed in integers: bmcd does not link
/// float formatting for this.)
const BUCKETS: [(u64, &str); 12] = [
    (1_000, "0.001"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
];

/// Nanoseconds as decimal seconds (`1.500000000`).
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_ns: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        for ((bound, _), n) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if us <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum_ns = self
            .sum_ns
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for ((_, le), n) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", seconds(self.sum_ns));
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default, Clone)]
struct LibvirtOp {
    errors: u64,
    latency: Histogram,
}

struct Registry {
    /// (method, route template, status) -> requests.
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    /// Route template -> latency.
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    in_flight: AtomicI64,
    libvirt: Mutex<BTreeMap<&'static str, LibvirtOp>>,
    limited_address: AtomicU64,
    limited_user: AtomicU64,
}

static REGISTRY: Registry = Registry {
    requests: Mutex::new(BTreeMap::new()),
    latency: Mutex::new(BTreeMap::new()),
    in_flight: AtomicI64::new(0),
    libvirt: Mutex::new(BTreeMap::new()),
    limited_address: AtomicU64::new(0),
    limited_user: AtomicU64::new(0),
};

/// The label for a request method: the standard ones, everything else `other`.
pub fn method_label(m: &hyper::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        REGISTRY.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        REGISTRY.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Records one answered request. `template` is the route's path template, or
/// `unmatched` when no route matched.
pub fn record_request(method: &'static str, template: &'static str, status: u16, elapsed: Duration) {
    *REGISTRY
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((method, template, status))
        .or_default() += 1;
    REGISTRY
        .latency
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(template)
        .or_default()
        .observe(elapsed);
}

/// Records one libvirt call (made on a worker thread) by operation name.
pub fn record_libvirt(op: &'static str, elapsed: Duration, ok: bool) {
    let mut ops = REGISTRY.libvirt.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = ops.entry(op).or_default();
    entry.latency.observe(elapsed);
    if !ok {
        entry.errors += 1;
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedBy {
    Address,
    User,
}

pub fn record_rate_limited(by: LimitedBy) {
    match by {
        LimitedBy::Address => REGISTRY.limited_address.fetch_add(1, Ordering::Relaxed),
        LimitedBy::User => REGISTRY.limited_user.fetch_add(1, Ordering::Relaxed),
    };
}

/// What the process itself uses, read from `/proc/self` (blocking: call it
/// off the async runtime).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFacts {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    /// User and system CPU time in hundredths of a second.
    pub cpu_ticks: Option<u64>,
}

pub fn process_facts() -> ProcessFacts {
    let page = 4096u64;
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let mut fields = statm.as_deref().unwrap_or("").split_whitespace();
    let virtual_bytes = fields
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|p| p * page);
    let resident_bytes = fields
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|p| p * page);
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
    });
    // utime and stime (fields 14 and 15) in clock ticks, assumed 100 per second
    // (USER_HZ on every Linux architecture bmcd targets).
    let cpu_ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        Some(utime + stime)
    });
    ProcessFacts {
        resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds,
        cpu_ticks,
    }
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition. `systems` is `None` when libvirt could not be read
/// (then `bmcd_libvirt_up` is 0 and no per-VM series appear).
pub fn render(process: &ProcessFacts, systems: Option<&[SystemStatistics]>) -> String {
    let mut out = String::with_capacity(16 << 10);
    let _ = writeln!(
        out,
        "# HELP bmcd_build_info bmcd's version.\n# TYPE bmcd_build_info gauge\nbmcd_build_info{{version=\"{}\"}} 1",
        crate::VERSION
    );

    help(
        &mut out,
        "bmcd_http_requests_total",
        "counter",
        "Answered API requests by method, route template and status.",
    );
    for ((method, template, status), n) in REGISTRY
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        let _ = writeln!(
            out,
            "bmcd_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(template)
        );
    }
    help(
        &mut out,
        "bmcd_http_request_duration_seconds",
        "histogram",
        "Time from request head to response head, by route template.",
    );
    let latency = REGISTRY
        .latency
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for (template, h) in &latency {
        h.write(
            &mut out,
            "bmcd_http_request_duration_seconds",
            &format!("route=\"{}\"", label(template)),
        );
    }
    help(
        &mut out,
        "bmcd_http_requests_in_flight",
        "gauge",
        "Requests being handled now.",
    );
    let _ = writeln!(
        out,
        "bmcd_http_requests_in_flight {}",
        REGISTRY.in_flight.load(Ordering::Relaxed)
    );
    help(
        &mut out,
        "bmcd_rate_limited_total",
        "counter",
        "Requests refused with 429, by the limit that refused them.",
    );
    let _ = writeln!(
        out,
        "bmcd_rate_limited_total{{by=\"address\"}} {}\nbmcd_rate_limited_total{{by=\"user\"}} {}",
        REGISTRY.limited_address.load(Ordering::Relaxed),
        REGISTRY.limited_user.load(Ordering::Relaxed)
    );

    let ops = REGISTRY
        .libvirt
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    help(
        &mut out,
        "bmcd_libvirt_calls_total",
        "counter",
        "libvirt calls by operation.",
    );
    for (op, o) in &ops {
        let _ = writeln!(out, "bmcd_libvirt_calls_total{{op=\"{op}\"}} {}", o.latency.count);
    }
    help(
        &mut out,
        "bmcd_libvirt_call_errors_total",
        "counter",
        "libvirt calls that failed (including timeouts), by operation.",
    );
    for (op, o) in &ops {
        let _ = writeln!(out, "bmcd_libvirt_call_errors_total{{op=\"{op}\"}} {}", o.errors);
    }
    help(
        &mut out,
        "bmcd_libvirt_call_duration_seconds",
        "histogram",
        "libvirt call time (queue wait included), by operation.",
    );
    for (op, o) in &ops {
        o.latency.write(
            &mut out,
            "bmcd_libvirt_call_duration_seconds",
            &format!("op=\"{op}\""),
        );
    }
    help(
        &mut out,
        "bmcd_libvirt_up",
        "gauge",
        "1 when libvirt answered this scrape's statistics read.",
    );
    let _ = writeln!(out, "bmcd_libvirt_up {}", u8::from(systems.is_some()));

    let gauges: [(&str, &str, Option<u64>); 4] = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            process.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            process.virtual_bytes,
        ),
        ("process_open_fds", "Open file descriptors.", process.open_fds),
        (
            "process_max_fds",
            "Limit of open file descriptors.",
            process.max_fds,
        ),
    ];
    for (name, text, value) in gauges {
        if let Some(v) = value {
            help(&mut out, name, "gauge", text);
            let _ = writeln!(out, "{name} {v}");
        }
    }
    if let Some(ticks) = process.cpu_ticks {
        help(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time in seconds.",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}.{:02}",
            ticks / 100,
            ticks % 100
        );
    }

    if let Some(systems) = systems {
        write_systems(&mut out, systems);
    }
    out
}

fn write_systems(out: &mut String, systems: &[SystemStatistics]) {
    let id = |s: &SystemStatistics| format!("system=\"{}\",name=\"{}\"", label(&s.id), label(&s.name));
    help(
        out,
        "bmcd_system_power_on",
        "gauge",
        "1 when the system is on (running or paused).",
    );
    for s in systems {
        let _ = writeln!(out, "bmcd_system_power_on{{{}}} {}", id(s), u8::from(s.power_on));
    }
    help(out, "bmcd_system_vcpus", "gauge", "Virtual CPUs.");
    for s in systems {
        let _ = writeln!(out, "bmcd_system_vcpus{{{}}} {}", id(s), s.vcpus);
    }
    help(
        out,
        "bmcd_system_cpu_seconds_total",
        "counter",
        "CPU time the system used, in seconds.",
    );
    for s in systems {
        let _ = writeln!(
            out,
            "bmcd_system_cpu_seconds_total{{{}}} {}",
            id(s),
            seconds(s.cpu_time_ns)
        );
    }
    help(
        out,
        "bmcd_system_memory_bytes",
        "gauge",
        "Memory the system has now.",
    );
    for s in systems {
        let _ = writeln!(
            out,
            "bmcd_system_memory_bytes{{{}}} {}",
            id(s),
            s.memory_kib * 1024
        );
    }
    help(
        out,
        "bmcd_system_memory_max_bytes",
        "gauge",
        "Memory the system may have at most.",
    );
    for s in systems {
        let _ = writeln!(
            out,
            "bmcd_system_memory_max_bytes{{{}}} {}",
            id(s),
            s.max_memory_kib * 1024
        );
    }
    help(
        out,
        "bmcd_system_disk_read_bytes_total",
        "counter",
        "Bytes read from each drive (running systems, where libvirt reports it).",
    );
    for s in systems {
        for d in &s.drives {
            let _ = writeln!(
                out,
                "bmcd_system_disk_read_bytes_total{{{},drive=\"{}\"}} {}",
                id(s),
                label(&d.id),
                d.read_bytes
            );
        }
    }
    help(
        out,
        "bmcd_system_disk_write_bytes_total",
        "counter",
        "Bytes written to each drive.",
    );
    for s in systems {
        for d in &s.drives {
            let _ = writeln!(
                out,
                "bmcd_system_disk_write_bytes_total{{{},drive=\"{}\"}} {}",
                id(s),
                label(&d.id),
                d.write_bytes
            );
        }
    }
    help(
        out,
        "bmcd_system_network_receive_bytes_total",
        "counter",
        "Bytes received on each interface.",
    );
    for s in systems {
        for n in &s.interfaces {
            let _ = writeln!(
                out,
                "bmcd_system_network_receive_bytes_total{{{},interface=\"{}\"}} {}",
                id(s),
                label(&n.id),
                n.rx_bytes
            );
        }
    }
    help(
        out,
        "bmcd_system_network_transmit_bytes_total",
        "counter",
        "Bytes sent on each interface.",
    );
    for s in systems {
        for n in &s.interfaces {
            let _ = writeln!(
                out,
                "bmcd_system_network_transmit_bytes_total{{{},interface=\"{}\"}} {}",
                id(s),
                label(&n.id),
                n.tx_bytes
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DriveStatistics, InterfaceStatistics};

    #[test]
    fn the_exposition_has_help_type_and_samples() {
        record_request("GET", "/redfish/v1/Systems/{id}", 200, Duration::from_millis(3));
        record_libvirt("system", Duration::from_millis(1), false);
        let vm = SystemStatistics {
            id: "u-1".into(),
            name: "vm \"a\"".into(),
            power_on: true,
            vcpus: 2,
            cpu_time_ns: 1_500_000_000,
            memory_kib: 1024,
            max_memory_kib: 2048,
            drives: vec![DriveStatistics {
                id: "vda".into(),
                read_bytes: 10,
                write_bytes: 20,
            }],
            interfaces: vec![InterfaceStatistics {
                id: "NIC1".into(),
                rx_bytes: 5,
                tx_bytes: 6,
            }],
        };
        let text = render(&process_facts(), Some(&[vm]));
        assert!(text.contains(
            "bmcd_http_requests_total{method=\"GET\",route=\"/redfish/v1/Systems/{id}\",status=\"200\"}"
        ));
        assert!(text.contains(
            "bmcd_http_request_duration_seconds_bucket{route=\"/redfish/v1/Systems/{id}\",le=\"0.005\"}"
        ));
        assert!(text.contains("bmcd_libvirt_call_errors_total{op=\"system\"}"));
        assert!(
            text.contains("bmcd_system_cpu_seconds_total{system=\"u-1\",name=\"vm \\\"a\\\"\"} 1.500000000")
        );
        assert!(text.contains(
            "bmcd_system_disk_write_bytes_total{system=\"u-1\",name=\"vm \\\"a\\\"\",drive=\"vda\"} 20"
        ));
        assert!(text.contains("bmcd_libvirt_up 1"));
        assert!(text.contains("process_resident_memory_bytes "));
        // Every sample line belongs to a declared family.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            assert!(
                families.iter().any(|f| name == *f
                    || name
                        .strip_prefix(f)
                        .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
                "{line}"
            );
        }
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(3));
        assert_eq!(h.counts[0], 0);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[BUCKETS.len() - 1], 2);
        assert_eq!(h.count, 2);
    }
}
