//! RFC 4180 CSV output for alert exports, with spreadsheet formula injection neutralised:
//! alert fields carry attacker-controlled text (SNI, principal names), and a cell starting
//! with `=`, `+`, `-`, `@`, tab or carriage return would run as a formula when opened.

/// Characters that make a spreadsheet treat a cell as a formula.
const FORMULA_PREFIXES: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Appends one record (fields quoted when needed, CRLF line end).
pub(crate) fn push_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f.as_ref());
    }
    out.push_str("\r\n");
}

fn push_field(out: &mut String, f: &str) {
    let neutralise = f.starts_with(FORMULA_PREFIXES) && !is_number(f);
    let quote = neutralise || f.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if neutralise {
        out.push('\'');
    }
    for c in f.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// Plain numbers (`-1`, `+3.5`) stay as they are.
fn is_number(f: &str) -> bool {
    !f.is_empty() && f.parse::<f64>().is_ok() && !f.contains(['\t', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_escapes_and_neutralises() {
        let mut s = String::new();
        push_record(&mut s, &["a", "b,c", "say \"hi\"", "line\nbreak"]);
        assert_eq!(s, "a,\"b,c\",\"say \"\"hi\"\"\",\"line\nbreak\"\r\n");
        let mut s = String::new();
        push_record(&mut s, &["=HYPERLINK(\"x\")", "-5", "@SUM(A1)", "+1.5", ""]);
        assert_eq!(s, "\"'=HYPERLINK(\"\"x\"\")\",-5,\"'@SUM(A1)\",+1.5,\r\n");
    }
}
