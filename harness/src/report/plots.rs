//! `latency.png` and `rate.png`: the two plots Jepsen users know, as pictures for CI
//! artifacts and for places where the HTML report cannot be opened. Both shade the faults.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::analysis::Analysis;
use super::operations::Ending;
use crate::faults::FaultKind;

const SIZE: (u32, u32) = (1280, 520);
const FONT: &str = "sans-serif";

const OK: RGBColor = RGBColor(26, 152, 80);
const FAIL: RGBColor = RGBColor(215, 48, 39);
const INFO: RGBColor = RGBColor(240, 150, 20);

fn ending_color(ending: Ending) -> RGBColor {
    match ending {
        Ending::Ok => OK,
        Ending::Fail => FAIL,
        Ending::Info | Ending::Pending => INFO,
    }
}

fn fault_color(kind: FaultKind) -> RGBColor {
    match kind {
        FaultKind::Kill => RGBColor(200, 60, 60),
        FaultKind::Pause => RGBColor(120, 60, 160),
        FaultKind::Partition => RGBColor(50, 110, 180),
        FaultKind::Slow => RGBColor(190, 140, 20),
        FaultKind::Lossy => RGBColor(40, 150, 140),
        FaultKind::Clock => RGBColor(90, 140, 40),
    }
}

const FAULT_KINDS: [(FaultKind, &str); 6] = [
    (FaultKind::Kill, "kill"),
    (FaultKind::Pause, "pause"),
    (FaultKind::Partition, "partition"),
    (FaultKind::Slow, "slow"),
    (FaultKind::Lossy, "lossy"),
    (FaultKind::Clock, "clock"),
];

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// A plotters error, as text (its type depends on the backend).
fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {error}")
}

/// Latency of each operation (a point at its invocation, coloured by outcome) on a log
/// scale, with the faults shaded.
pub fn latency(analysis: &Analysis, path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let points: Vec<(f64, f64, Ending)> = analysis
        .latency_points
        .iter()
        .filter_map(|&i| {
            let op = &analysis.ops[i];
            let millis = op.latency()? as f64 / 1e6;
            Some((seconds(op.start), millis, op.ending))
        })
        .collect();
    let lowest = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let highest = points.iter().map(|p| p.1).fold(0.0, f64::max);
    // Whole decades, at least 0.1 ms to 1 s.
    let floor = 10f64.powf(lowest.max(0.01).log10().floor()).min(0.1);
    let ceiling = 10f64.powf(highest.max(1.0).log10().ceil()).max(1000.0);
    let end = seconds(analysis.end).max(1e-3);

    let mut chart = ChartBuilder::on(&root)
        .caption("Latency (invocation to completion)", (FONT, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..end, (floor..ceiling).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|x| number(*x))
        .y_label_formatter(&|y| number(*y))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(plot_error)?;
    shade_faults(&mut chart, analysis, (floor, ceiling))?;
    // Successes first, so failures and unknowns stay visible on top.
    for (ending, label) in [
        (Ending::Ok, "ok"),
        (Ending::Fail, "fail"),
        (Ending::Info, "info (timed out: may have happened)"),
    ] {
        let color = ending_color(ending);
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2 == ending)
                    .map(|&(x, y, _)| Circle::new((x, y.max(floor)), 2, color.filled())),
            )
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    finish(chart, root)
}

/// Completions per second, by outcome, in buckets of a round size; faults shaded.
pub fn rate(analysis: &Analysis, path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let end = analysis.end.max(1);
    let bucket = bucket_size(end);
    let buckets = end.div_ceil(bucket) as usize;
    let mut counts = vec![[0u64; 3]; buckets];
    for op in &analysis.ops {
        let (Some(completed), Some(column)) = (op.end, outcome_column(op.ending)) else {
            continue;
        };
        let at = ((completed / bucket) as usize).min(buckets - 1);
        counts[at][column] += 1;
    }
    let per_second = 1e9 / bucket as f64;
    let highest = counts.iter().flatten().copied().max().unwrap_or(0) as f64 * per_second;
    let top = (highest * 1.1).max(1.0);

    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Throughput (completions per second, in buckets of {})",
                duration(bucket)
            ),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..seconds(end), 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("operations per second")
        .x_label_formatter(&|x| number(*x))
        .y_label_formatter(&|y| number(*y))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(plot_error)?;
    shade_faults(&mut chart, analysis, (0.0, top))?;
    for (column, (ending, label)) in [
        (Ending::Ok, "ok"),
        (Ending::Fail, "fail"),
        (Ending::Info, "info"),
    ]
    .into_iter()
    .enumerate()
    {
        let color = ending_color(ending);
        let line = counts.iter().enumerate().map(|(i, count)| {
            let middle = (i as f64 + 0.5) * bucket as f64;
            (middle / 1e9, count[column] as f64 * per_second)
        });
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
    }
    finish(chart, root)
}

/// An axis label: no trailing zeros ("100", "2.5", "0.1").
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A round duration of nanoseconds, as words: "100 ms", "5 s".
fn duration(nanos: u64) -> String {
    if nanos >= 1_000_000_000 && nanos.is_multiple_of(1_000_000_000) {
        format!("{} s", nanos / 1_000_000_000)
    } else {
        format!("{} ms", number(nanos as f64 / 1e6))
    }
}

/// Which of the rate plot's series an operation counts in; pending ones never completed.
fn outcome_column(ending: Ending) -> Option<usize> {
    match ending {
        Ending::Ok => Some(0),
        Ending::Fail => Some(1),
        Ending::Info => Some(2),
        Ending::Pending => None,
    }
}

/// A round bucket (1, 2 or 5 times a power of ten, at least 100 ms) giving at most about
/// 200 buckets over `end` nanoseconds.
fn bucket_size(end: u64) -> u64 {
    let wanted = (end / 200).max(100_000_000);
    let mut decade = 100_000_000u64;
    loop {
        for step in [1, 2, 5] {
            if decade * step >= wanted {
                return decade * step;
            }
        }
        decade *= 10;
    }
}

type Chart<'a, Y> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

/// Shades each fault from its start to its end (or the end of the run) over the y range,
/// with one legend entry per kind of fault that occurred.
fn shade_faults<Y>(
    chart: &mut Chart<'_, Y>,
    analysis: &Analysis,
    (low, high): (f64, f64),
) -> Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    for (kind, label) in FAULT_KINDS {
        let color = fault_color(kind);
        let intervals: Vec<(f64, f64)> = analysis
            .faults
            .iter()
            .filter(|fault| fault.kind == kind)
            .map(|fault| {
                (
                    seconds(fault.start),
                    seconds(fault.end.unwrap_or(analysis.end)),
                )
            })
            .collect();
        if intervals.is_empty() {
            continue;
        }
        chart
            .draw_series(intervals.into_iter().map(|(start, end)| {
                Rectangle::new([(start, low), (end, high)], color.mix(0.12).filled())
            }))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.mix(0.3).filled())
            });
    }
    Ok(())
}

fn finish<Y>(mut chart: Chart<'_, Y>, root: DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 14))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short() {
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(duration(500_000_000), "500 ms");
        assert_eq!(duration(5_000_000_000), "5 s");
    }

    #[test]
    fn buckets_are_round_and_few() {
        assert_eq!(bucket_size(10_000_000_000), 100_000_000, "10 s: 100 ms");
        assert_eq!(bucket_size(60_000_000_000), 500_000_000, "1 min: 500 ms");
        assert_eq!(bucket_size(600_000_000_000), 5_000_000_000, "10 min: 5 s");
        for end in [1u64, 1_000_000_000, 3_600_000_000_000] {
            assert!(end.div_ceil(bucket_size(end)) <= 200);
        }
    }
}
