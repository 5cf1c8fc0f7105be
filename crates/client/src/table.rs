//! Plain-text tables for terminals and CI logs: a header row, columns
//! padded to their widest cell, two spaces between columns, no trailing
//! spaces. Widths count characters, which is exact for the ASCII the API
//! returns and close enough for the rest.

/// A table under construction.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are empty, extra cells are kept. A
    /// line break in a cell becomes a space: a row is one line.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.into().replace(['\r', '\n'], " "))
                .collect(),
        );
        self
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in `\n`.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', w - width(cell)));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A cell's width in characters.
fn width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell_without_trailing_spaces() {
        let mut t = Table::new(["ID", "KEY", "STATUS"]);
        t.row(["sub_1", "billing-calls", "active"]);
        t.row(["sub_22", "", "disabled"]);
        assert_eq!(
            t.render(),
            "ID      KEY            STATUS\n\
             sub_1   billing-calls  active\n\
             sub_22                 disabled\n"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_kept() {
        let mut t = Table::new(["A", "B"]);
        t.row(["x"]);
        t.row(["yy", "z", "extra"]);
        t.row(["two\nlines"]);
        assert_eq!(
            t.render(),
            "A          B\nx\nyy         z  extra\ntwo lines\n"
        );
        assert!(!t.is_empty());
    }
}
