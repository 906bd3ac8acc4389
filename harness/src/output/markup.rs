//! Tables rendered for a terminal (aligned columns) or as Markdown. One
//! table type serves every markup.

/// A table of already formatted cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    /// Right-align this column (numbers).
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Terminal,
    Markdown,
}

pub fn render(table: &Table, markup: Markup) -> String {
    let n = table.headers.len();
    let width = |i: usize| {
        std::iter::once(&table.headers[i])
            .chain(table.rows.iter().map(|r| &r[i]))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..n).map(width).collect();
    // Padded by hand: `format!`'s width is at most 65,535, and a cell (a
    // long variant description or environment value) may be wider.
    let cell = |s: &str, i: usize| {
        let pad = " ".repeat(widths[i].saturating_sub(s.chars().count()));
        if table.right[i] {
            format!("{pad}{s}")
        } else {
            format!("{s}{pad}")
        }
    };
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, s)| cell(s, i)).collect();
        match markup {
            Markup::Terminal => parts.join("  ").trim_end().to_string(),
            Markup::Markdown => format!("| {} |", parts.join(" | ")),
        }
    };
    let mut out = String::new();
    out.push_str(&line(&table.headers));
    out.push('\n');
    let rule: Vec<String> = (0..n)
        .map(|i| match markup {
            Markup::Terminal => "─".repeat(widths[i]),
            Markup::Markdown if table.right[i] => format!("{}:", "-".repeat(widths[i].max(2) - 1)),
            Markup::Markdown => "-".repeat(widths[i].max(1)),
        })
        .collect();
    match markup {
        Markup::Terminal => out.push_str(&rule.join("  ")),
        Markup::Markdown => out.push_str(&format!("| {} |", rule.join(" | "))),
    }
    out.push('\n');
    for r in &table.rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        let mut t = Table::new(&[("name", false), ("value", true)]);
        t.push(vec!["a".into(), "1".into()]);
        t.push(vec!["long name".into(), "22.5".into()]);
        t
    }

    #[test]
    fn terminal_aligns_columns() {
        let s = render(&t(), Markup::Terminal);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "name       value");
        assert_eq!(lines[2], "a              1");
        assert_eq!(lines[3], "long name   22.5");
    }

    #[test]
    fn markdown_has_pipes_and_alignment_row() {
        let s = render(&t(), Markup::Markdown);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "| name      | value |");
        assert_eq!(lines[1], "| --------- | ----: |");
        assert_eq!(lines[3], "| long name |  22.5 |");
    }

    #[test]
    fn a_cell_wider_than_format_s_limit_is_padded() {
        // `format!("{s:<w$}")` panics for a width over 65,535: a long
        // variant description lost a finished run's table.
        let mut t = t();
        t.push(vec!["x".repeat(70_000), "3".into()]);
        for markup in [Markup::Terminal, Markup::Markdown] {
            let s = render(&t, markup);
            let lines: Vec<&str> = s.lines().collect();
            assert!(lines[2].starts_with('a') || lines[2].starts_with("| a"));
            assert_eq!(
                lines[2].chars().count(),
                lines[4].chars().count(),
                "{markup:?}"
            );
        }
    }
}
