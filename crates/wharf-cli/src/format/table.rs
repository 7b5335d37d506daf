//! Column alignment exactly as docker's tabwriter (Go's `text/tabwriter`, elastic tabstops)
//! with docker's settings: minwidth 10, tabwidth 1, padding 3, padchar ' ', no flags.

/// Docker's table settings.
pub const MIN_WIDTH: usize = 10;
pub const PADDING: usize = 3;

/// Aligns tab-terminated cells of `text` into columns as `tabwriter.NewWriter(w, 10, 1, 3,
/// ' ', 0)` followed by `Flush` would.
pub fn align(text: &str) -> String {
    align_with(text, MIN_WIDTH, PADDING)
}

/// The same with other settings (`docker stats` and `docker version` use their own).
pub fn align_with(text: &str, minwidth: usize, padding: usize) -> String {
    // Lines of cells; the last cell of a line is not tab-terminated and does not align.
    let raw_lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut block: Vec<Vec<&str>> = Vec::new();
    let n = raw_lines.len();
    for (i, l) in raw_lines.into_iter().enumerate() {
        let cells: Vec<&str> = l.split('\t').collect();
        let single = cells.len() == 1;
        block.push(cells);
        // Go's writer flushes after a line of a single cell (and at the end).
        if (single && i + 1 < n) || i + 1 == n {
            let last_has_newline = i + 1 < n;
            let w = Writer {
                lines: &block,
                minwidth,
                padding,
            };
            let mut widths = Vec::new();
            w.format(&mut out, &mut widths, 0, block.len());
            if last_has_newline {
                out.push('\n');
            }
            block.clear();
        }
    }
    out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    minwidth: usize,
    padding: usize,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

impl Writer<'_> {
    fn format(&self, out: &mut String, widths: &mut Vec<usize>, line0: usize, line1: usize) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(out, widths, line0, this);
            line0 = this;
            let mut w = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                w = w.max(width(line[column]) + self.padding);
                this += 1;
            }
            widths.push(w);
            self.format(out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(out, widths, line0, line1);
    }

    fn write_lines(&self, out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for i in line0..line1 {
            let line = &self.lines[i];
            for (j, c) in line.iter().enumerate() {
                out.push_str(c);
                if j < widths.len() && j + 1 < line.len() {
                    let pad = widths[j].saturating_sub(width(c));
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_widest_plus_three_min_ten() {
        let t = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n";
        assert_eq!(
            align(t),
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n"
        );
    }

    #[test]
    fn empty_cells_and_trailing_cell() {
        let t = "A\tB\tC\n\t\tlast\n";
        assert_eq!(
            align(t),
            "A         B         C\n                    last\n"
        );
    }

    #[test]
    fn single_cell_lines_end_a_block() {
        let t = "a\tb\nsingle\nlonger-cell\tc\n";
        assert_eq!(align(t), "a         b\nsingle\nlonger-cell   c\n");
    }

    #[test]
    fn column_blocks_are_per_run_of_lines() {
        // Go: the second column only aligns among lines that have a third cell.
        let t = "x\ty\tz\nxx\tyyyyyyyyyyyyy\n";
        assert_eq!(align(t), "x         y         z\nxx        yyyyyyyyyyyyy\n");
    }
}
