//! Bar charts drawn on the server as SVG (no script, no inline style: the strict CSP
//! holds), with the figures also in a table for screen readers and for copying.

/// One series of a chart: its name (already in words), its CSS class and its values
/// per bucket.
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// Colour class (`delivered`, `deferred`, …).
    pub class: &'static str,
    /// One value per bucket.
    pub values: Vec<u64>,
}

/// A chart as the template draws it: bars stacked per bucket, scaled to the tallest.
pub struct Chart {
    /// The chart's title (for `aria-labelledby`).
    pub title: String,
    /// Bucket labels (hours or days).
    pub labels: Vec<String>,
    /// The series, in stacking order.
    pub series: Vec<Series>,
    /// The bars: per bucket, one rectangle per series.
    pub bars: Vec<Vec<Bar>>,
    /// Width of one bucket's bar, in SVG units.
    pub bar_width: u32,
    /// The largest stacked total (the chart's scale).
    pub max: u64,
}

/// One rectangle.
pub struct Bar {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Height.
    pub height: u32,
    /// The series' class.
    pub class: &'static str,
}

/// The drawing's width and height in SVG units.
pub const WIDTH: u32 = 720;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 160;

impl Chart {
    /// Lays out `series` over `labels` as stacked bars.
    pub fn new(title: String, labels: Vec<String>, series: Vec<Series>) -> Chart {
        let buckets = labels.len().max(1) as u32;
        let slot = WIDTH / buckets;
        let bar_width = slot.saturating_sub(2).max(1);
        let totals: Vec<u64> = (0..labels.len())
            .map(|i| {
                series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0))
                    .sum()
            })
            .collect();
        let max = totals.iter().copied().max().unwrap_or(0);
        let scale = |v: u64| {
            if max == 0 {
                0
            } else {
                ((v as f64 / max as f64) * f64::from(HEIGHT)).round() as u32
            }
        };
        let bars = (0..labels.len())
            .map(|i| {
                let mut top = HEIGHT;
                series
                    .iter()
                    .filter_map(|s| {
                        let height = scale(s.values.get(i).copied().unwrap_or(0));
                        (height > 0).then(|| {
                            top -= height.min(top);
                            Bar {
                                x: i as u32 * slot,
                                y: top,
                                height,
                                class: s.class,
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        Chart {
            title,
            labels,
            series,
            bars,
            bar_width,
            max,
        }
    }

    /// The figures as table rows: each bucket's label and its value per series.
    pub fn rows(&self) -> Vec<(&str, Vec<u64>)> {
        self.labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let values = self
                    .series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0))
                    .collect();
                (label.as_str(), values)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_and_the_tallest_fills_the_height() {
        let chart = Chart::new(
            "t".into(),
            vec!["a".into(), "b".into()],
            vec![
                Series {
                    name: "x".into(),
                    class: "delivered",
                    values: vec![2, 1],
                },
                Series {
                    name: "y".into(),
                    class: "bounced",
                    values: vec![2, 0],
                },
            ],
        );
        assert_eq!(chart.max, 4);
        let first = &chart.bars[0];
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].height + first[1].height, HEIGHT);
        assert_eq!(first[1].y, 0, "the second series stacks on the first");
        assert_eq!(chart.bars[1].len(), 1, "a zero value draws no bar");
        assert_eq!(chart.bars[1][0].height, HEIGHT / 4);
    }
}
