//! Bar charts as inline SVG, drawn on the server: one bar per minute, the
//! newest on the right. Colours come from the style sheet (classes), so
//! the strict CSP holds and both themes apply.

use maud::{html, Markup};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 100.0;

/// A bar chart of `series` (oldest first, one value per minute, the last
/// the minute in progress) with `caption`; `class` colours the bars
/// (`bar-done`, `bar-dead`); `unit` names one count in bar titles.
pub(crate) fn bars(caption: &str, series: &[u64], class: &str, unit: &str) -> Markup {
    let n = series.len().max(1);
    let max = series.iter().copied().max().unwrap_or(0);
    let total: u64 = series.iter().sum();
    let slot = WIDTH / n as f64;
    let gap = (slot * 0.15).min(2.0);
    let label = format!("{caption}: {total} in the last {n} minutes, at most {max} a minute");
    html! {
        figure.chart {
            figcaption {
                span { (caption) }
                span { "total " strong { (total) } " · peak " strong { (max) } "/min" }
            }
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } preserveAspectRatio="none"
                role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
                @for (i, &value) in series.iter().enumerate() {
                    @if value > 0 {
                        @let height = (value as f64 / max as f64 * (HEIGHT - 2.0)).max(1.5);
                        rect class=(class)
                            x=(format!("{:.2}", i as f64 * slot + gap / 2.0))
                            y=(format!("{:.2}", HEIGHT - height))
                            width=(format!("{:.2}", slot - gap))
                            height=(format!("{height:.2}")) {
                            title { (minutes_ago(n - 1 - i)) ": " (value) " " (unit) }
                        }
                    }
                }
                line.base x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) {}
            }
            div.chart-axis {
                span { "-" (n) " min" }
                span { "-" (n / 2) " min" }
                span { "now" }
            }
        }
    }
}

fn minutes_ago(back: usize) -> String {
    match back {
        0 => "this minute".to_owned(),
        1 => "1 minute ago".to_owned(),
        n => format!("{n} minutes ago"),
    }
}

/// Element-wise sums of several series of one length.
pub(crate) fn sum<'a>(series: impl IntoIterator<Item = &'a [u64]>, len: usize) -> Vec<u64> {
    let mut total = vec![0; len];
    for s in series {
        for (t, v) in total.iter_mut().zip(s) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_per_busy_minute() {
        let svg = bars("completed", &[0, 4, 0, 2], "bar-done", "completed").into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("2 minutes ago: 4 completed"), "{svg}");
        assert!(svg.contains("this minute: 2 completed"), "{svg}");
        assert!(svg.contains("total <strong>6</strong>"), "{svg}");
        assert_eq!(sum([&[1, 2][..], &[3, 4][..]], 2), [4, 6]);
    }
}
