//! The benchmark's figures: one record per size, written as JSON, printed as a Markdown
//! table, and drawn (convergence time and peak memory against shard count) as a PNG.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Serialize;

use crate::observe::Milestones;

#[derive(Debug, Default, Serialize)]
pub struct Run {
    /// UTC, RFC 3339.
    pub started: String,
    /// `git describe --always --dirty` of the tree measured.
    pub commit: String,
    pub steady_seconds: u64,
    pub sizes: Vec<SizeResult>,
}

#[derive(Debug, Default, Serialize)]
pub struct SizeResult {
    pub size: String,
    pub clusters: usize,
    pub shards: usize,
    /// Objects `render` lists (what the operator manages; the floor applies exactly these).
    pub objects: usize,
    /// Pods that run: tablets, etcd members, vtctld and vtgate replicas.
    pub pods: usize,
    pub floor: Option<Floor>,
    pub operator: Option<OperatorResult>,
    /// Operator time to everything created, pods Ready and clusters Ready, over the floor's
    /// time to everything created and pods Ready.
    pub ratio_to_floor: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Floor {
    pub milestones: Milestones,
    /// How long `kubectl apply --server-side` itself ran.
    pub apply_seconds: f64,
    pub error: Option<String>,
}

impl Floor {
    pub fn ready(&self) -> Option<f64> {
        Some(self.milestones.created?.max(self.milestones.pods_ready?))
    }
}

#[derive(Debug, Default, Serialize)]
pub struct OperatorResult {
    pub milestones: Milestones,
    pub error: Option<String>,
    /// API requests from apply to convergence (plus a 10 s settle), by verb.
    pub requests_by_verb: BTreeMap<String, u64>,
    /// The same, by `verb resource`.
    pub requests_by_resource: BTreeMap<String, u64>,
    pub requests_total: u64,
    pub requests_per_object: f64,
    /// Requests during the steady window, by verb.
    pub steady_requests_by_verb: BTreeMap<String, u64>,
    /// create/update/patch/delete requests per minute in the steady window.
    pub steady_mutating_requests_per_minute: f64,
    /// Objects in the namespace that really changed (new resourceVersion) per minute in the
    /// steady window, whoever changed them.
    pub steady_object_changes_per_minute: f64,
    pub peak_rss_mib: f64,
    pub rss_mib: f64,
    /// utime + stime from apply to convergence (plus the settle).
    pub cpu_seconds_converge: f64,
    pub cpu_seconds_steady: f64,
    /// Calls the (fake) vtctld received, by method.
    pub vtctld_calls: BTreeMap<String, usize>,
}

impl OperatorResult {
    pub fn ready(&self) -> Option<f64> {
        let m = &self.milestones;
        Some(m.created?.max(m.pods_ready?).max(m.clusters_ready?))
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}"))
}

/// The Markdown table of a run.
pub fn table(run: &Run) -> String {
    let mut out = String::from(
        "| shards | objects | floor: all Ready (s) | created (s) | pods Ready (s) | clusters Ready (s) | primaries (s) | ratio to floor | requests (per object) | by verb | steady writes/min | peak RSS (MiB) | CPU (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in &run.sizes {
        let floor = s.floor.as_ref().and_then(Floor::ready);
        let row = match &s.operator {
            Some(o) => format!(
                "{} | {} | {} | {} | {:.0} ({:.1}) | {} | {:.1} | {:.0} | {:.1} |",
                secs(o.milestones.pods_ready),
                secs(o.milestones.clusters_ready),
                secs(o.milestones.primaries),
                s.ratio_to_floor.map_or("—".into(), |r| format!("{r:.2}×")),
                o.requests_total,
                o.requests_per_object,
                o.requests_by_verb
                    .iter()
                    .map(|(v, n)| format!("{v} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                o.steady_mutating_requests_per_minute,
                o.peak_rss_mib,
                o.cpu_seconds_converge,
            ),
            None => "— | — | — | — | — | — | — | — | — |".into(),
        };
        let created = s.operator.as_ref().and_then(|o| o.milestones.created);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {row}\n",
            s.size,
            s.objects,
            secs(floor),
            secs(created)
        ));
    }
    out
}

/// Writes the run as pretty JSON.
pub fn write_json(run: &Run, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(run)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// One figure of a size, if it was measured.
type Figure = dyn Fn(&SizeResult) -> Option<f64>;

/// Two panels against total shards (log scale): convergence times (operator and floor), and
/// the operator's peak RSS. The ten-cluster size is drawn as separate markers.
pub fn plot(run: &Run, path: &Path) -> Result<()> {
    // The font comes with a crate, so a machine without system fonts draws the same picture.
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::UBUNTU_LIGHT,
    )
    .map_err(|_| anyhow::anyhow!("cannot load the plot's font"))?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let single: Vec<&SizeResult> = run.sizes.iter().filter(|s| s.clusters == 1).collect();
    let multi: Vec<&SizeResult> = run.sizes.iter().filter(|s| s.clusters > 1).collect();
    let x = |s: &SizeResult| (s.clusters * s.shards) as f64;
    let max_x = run.sizes.iter().map(x).fold(8.0, f64::max) * 1.5;

    let series = |f: &Figure, of: &[&SizeResult]| -> Vec<(f64, f64)> {
        of.iter().filter_map(|s| f(s).map(|y| (x(s), y))).collect()
    };
    let ready = |s: &SizeResult| s.operator.as_ref().and_then(OperatorResult::ready);
    let primaries = |s: &SizeResult| s.operator.as_ref().and_then(|o| o.milestones.primaries);
    let floor = |s: &SizeResult| s.floor.as_ref().and_then(Floor::ready);
    let memory = |s: &SizeResult| s.operator.as_ref().map(|o| o.peak_rss_mib);

    let lines: [(&str, &Figure, RGBColor); 3] = [
        (
            "operator: all created, pods and clusters Ready",
            &ready,
            BLUE,
        ),
        ("operator: every shard has a primary", &primaries, MAGENTA),
        ("floor: kubectl apply of render, pods Ready", &floor, BLACK),
    ];
    let max_t = run
        .sizes
        .iter()
        .flat_map(|s| [ready(s), primaries(s), floor(s)])
        .flatten()
        .fold(10.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("Convergence time", ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((0.8f64..max_x).log_scale(), 0f64..max_t)?;
    chart
        .configure_mesh()
        .x_desc("shards (2 tablets each)")
        .y_desc("seconds after apply")
        .label_style(("sans-serif", 15))
        .draw()?;
    for (label, f, color) in lines {
        chart
            .draw_series(LineSeries::new(series(f, &single), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            series(f, &single)
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
        chart.draw_series(
            series(f, &multi)
                .into_iter()
                .map(|p| TriangleMarker::new(p, 7, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let max_m = run.sizes.iter().filter_map(memory).fold(10.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&right)
        .caption("Operator peak RSS (VmHWM)", ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((0.8f64..max_x).log_scale(), 0f64..max_m)?;
    chart
        .configure_mesh()
        .x_desc("shards (2 tablets each); triangles: 10 clusters of 8 shards")
        .y_desc("MiB")
        .label_style(("sans-serif", 15))
        .draw()?;
    chart.draw_series(LineSeries::new(
        series(&memory, &single),
        BLUE.stroke_width(2),
    ))?;
    chart.draw_series(
        series(&memory, &single)
            .into_iter()
            .map(|p| Circle::new(p, 4, BLUE.filled())),
    )?;
    chart.draw_series(
        series(&memory, &multi)
            .into_iter()
            .map(|p| TriangleMarker::new(p, 7, BLUE.filled())),
    )?;
    root.present()?;
    Ok(())
}
