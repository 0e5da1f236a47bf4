//! One collection in Prometheus' text exposition format (version 0.0.4), converted as
//! OpenTelemetry's Prometheus compatibility rules say: dots and other characters Prometheus
//! does not allow become `_`, the unit becomes a suffix (`s` → `_seconds`), monotonic sums
//! are counters ending in `_total`, histograms get cumulative `_bucket{le=…}` series with
//! `_sum` and `_count`, and the resource becomes one `target_info` series.
//!
//! Not here: collecting ([`crate::Metrics::collect`]) and serving ([`crate::endpoint`]).

use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Gauge, Histogram, Metric, MetricData, ResourceMetrics, Sum,
};

/// The content type of what [`render`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric of `rm`.
pub fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::new();
    let resource: Vec<KeyValue> = rm
        .resource()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    if !resource.is_empty() {
        out.push_str("# HELP target_info Target metadata\n# TYPE target_info gauge\n");
        let _ = writeln!(out, "target_info{} 1", labels(resource.iter(), None));
    }
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => render_data(&mut out, metric, data),
                AggregatedMetrics::U64(data) => render_data(&mut out, metric, data),
                AggregatedMetrics::I64(data) => render_data(&mut out, metric, data),
            }
        }
    }
    out
}

/// A value Prometheus can read (`{}` of a float is already its syntax, but for infinities).
trait Number: Copy {
    fn text(self) -> String;
}

impl Number for f64 {
    fn text(self) -> String {
        if self.is_infinite() {
            if self > 0.0 { "+Inf" } else { "-Inf" }.to_string()
        } else {
            self.to_string()
        }
    }
}

impl Number for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl Number for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

fn render_data<T: Number>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = name(metric.name(), metric.unit());
    match data {
        MetricData::Gauge(g) => gauge(out, metric, &base, g),
        MetricData::Sum(s) => sum(out, metric, &base, s),
        MetricData::Histogram(h) => histogram(out, metric, &base, h),
        // Not an instrument Lattice makes; a series Prometheus could not read is left out.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge<T: Number>(out: &mut String, metric: &Metric, base: &str, g: &Gauge<T>) {
    header(out, base, metric.description(), "gauge");
    for p in g.data_points() {
        let _ = writeln!(
            out,
            "{base}{} {}",
            labels(p.attributes(), None),
            p.value().text()
        );
    }
}

fn sum<T: Number>(out: &mut String, metric: &Metric, base: &str, s: &Sum<T>) {
    let (name, kind) = if s.is_monotonic() {
        (format!("{base}_total"), "counter")
    } else {
        (base.to_string(), "gauge")
    };
    header(out, &name, metric.description(), kind);
    for p in s.data_points() {
        let _ = writeln!(
            out,
            "{name}{} {}",
            labels(p.attributes(), None),
            p.value().text()
        );
    }
}

fn histogram<T: Number>(out: &mut String, metric: &Metric, base: &str, h: &Histogram<T>) {
    header(out, base, metric.description(), "histogram");
    for p in h.data_points() {
        let mut cumulative = 0u64;
        let bounds: Vec<f64> = p.bounds().collect();
        for (i, count) in p.bucket_counts().enumerate() {
            cumulative += count;
            // The last bucket is the one above every bound.
            let le = bounds.get(i).map_or("+Inf".to_string(), |b| b.text());
            let _ = writeln!(
                out,
                "{base}_bucket{} {cumulative}",
                labels(p.attributes(), Some(&le))
            );
        }
        let l = labels(p.attributes(), None);
        let _ = writeln!(out, "{base}_sum{l} {}", p.sum().text());
        let _ = writeln!(out, "{base}_count{l} {}", p.count());
    }
}

/// The Prometheus name of an OpenTelemetry metric with `unit`.
pub fn name(otel: &str, unit: &str) -> String {
    let mut name = sanitize(otel);
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        _ => "",
    };
    if !suffix.is_empty() && !name.ends_with(suffix) {
        name.push('_');
        name.push_str(suffix);
    }
    name
}

/// `s` with every character Prometheus does not allow in a name made `_` (runs collapsed),
/// and a leading digit prefixed with `_`.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `{k="v",...}` of `attrs` (and `le` for a bucket), or nothing when there are none.
fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut parts: Vec<String> = attrs
        .map(|kv| {
            let key = sanitize(kv.key.as_str()).replace(':', "_");
            format!("{key}=\"{}\"", escape(&kv.value.to_string()))
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_compatibility_rules() {
        assert_eq!(
            name("rpc.client.call.duration", "s"),
            "rpc_client_call_duration_seconds"
        );
        assert_eq!(name("lattice.kv..ops", "{op}"), "lattice_kv_ops");
        assert_eq!(name("9lives", ""), "_9lives");
        assert_eq!(name("x_seconds", "s"), "x_seconds");
    }

    #[test]
    fn label_values_are_escaped() {
        let kv = [KeyValue::new("a.b", "say \"hi\"\\\n")];
        assert_eq!(labels(kv.iter(), None), r#"{a_b="say \"hi\"\\\n"}"#);
    }
}
