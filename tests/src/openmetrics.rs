//! A strict check of OpenMetrics 1.0 text, as `/metrics` serves it: one family
//! per name, each family's lines together, sample names that fit their
//! family's type, no family name that is another's plus a reserved suffix
//! (the clash of a gauge `x` and a counter `x_total`), histograms that add up,
//! and `# EOF` at the end. It returns the samples, keyed as they are written
//! (`name` or `name{labels}`). Histograms are checked as Sapha writes them:
//! one series per family (no label besides `le`).

use std::collections::{BTreeMap, HashMap, HashSet};

/// The parsed samples of a valid exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    /// `name` or `name{a="x",b="y"}` (labels as written) -> value.
    pub samples: BTreeMap<String, f64>,
    /// Family name -> type.
    pub families: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of one series, written as in the text.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }
}

const RESERVED: [&str; 6] = ["_total", "_created", "_count", "_sum", "_bucket", "_info"];

fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "gaugehistogram" => &["_bucket", "_gcount", "_gsum"],
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Label names and values, in the order written.
type Labels = Vec<(String, String)>;

/// Parses `{a="x",b="y"}` at the start of `s`; gives the labels and the rest.
fn labels(s: &str) -> Result<(Labels, &str), String> {
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((Vec::new(), s));
    };
    let mut out: Labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("a label without '='")?;
        let key = &rest[..eq];
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        if out.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} twice"));
        }
        out.push((key.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ','".into());
        }
    }
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad number {s:?}")),
    }
}

/// Checks `text`; the error says which line broke which rule.
pub fn check(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .or_else(|| text.strip_suffix("# EOF"))
        .ok_or("the text does not end with # EOF")?;
    let mut exp = Exposition::default();
    // Families in order; `current` is the one whose lines we are in.
    let mut seen: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut meta: HashMap<String, HashSet<&str>> = HashMap::new();
    // Histogram family -> its buckets [(le, cumulative count)], and its _count.
    let mut buckets: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() == Some(family) {
            return Ok(());
        }
        if !seen.insert(family.to_string()) {
            return Err(format!(
                "family {family} appears twice (its lines are not together)"
            ));
        }
        *current = Some(family.to_string());
        Ok(())
    };
    for (n, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("an empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            if !["HELP", "TYPE", "UNIT"].contains(&kw) {
                return Err(at("an unknown comment (only HELP, TYPE, UNIT, EOF)".into()));
            }
            if !valid_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            enter(name, &mut current).map_err(at)?;
            if !meta.entry(name.to_string()).or_default().insert(kw) {
                return Err(at(format!("a second # {kw} for {name}")));
            }
            if exp
                .samples
                .keys()
                .any(|k| family_of(k, &exp.families) == name)
            {
                return Err(at("metadata after the family's samples".into()));
            }
            match kw {
                "TYPE" => {
                    if ![
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "stateset",
                        "info",
                        "summary",
                        "unknown",
                    ]
                    .contains(&arg)
                    {
                        return Err(at(format!("unknown type {arg:?}")));
                    }
                    exp.families.insert(name.to_string(), arg.to_string());
                }
                "UNIT" if !arg.is_empty() && !name.ends_with(&format!("_{arg}")) => {
                    return Err(at(format!("the name does not end with its unit {arg}")));
                }
                _ => {}
            }
            continue;
        }
        // A sample: name, labels, value, maybe a timestamp, maybe an exemplar.
        let line_main = line.split(" # ").next().unwrap_or(line);
        let name_end = line_main
            .find(['{', ' '])
            .ok_or_else(|| at("a sample without a value".into()))?;
        let name = &line_main[..name_end];
        if !valid_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = labels(&line_main[name_end..]).map_err(at)?;
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?
            .split(' ');
        let value = number(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            number(ts).map_err(at)?;
        }
        if fields.next().is_some() {
            return Err(at("extra fields after the value".into()));
        }
        let family = current
            .clone()
            .filter(|f| {
                let kind = exp.families.get(f).map_or("unknown", String::as_str);
                suffixes(kind)
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(f.as_str()))
            })
            .ok_or_else(|| {
                at(format!(
                    "sample {name} does not belong to the family before it ({})",
                    current.as_deref().unwrap_or("none")
                ))
            })?;
        let kind = exp.families.get(&family).map_or("unknown", String::as_str);
        if kind == "counter" && value < 0.0 {
            return Err(at("a negative counter".into()));
        }
        if name.ends_with("_bucket") && kind == "histogram" {
            let le = labels
                .iter()
                .find(|(k, _)| k == "le")
                .ok_or_else(|| at("a bucket without le".into()))?;
            let le = number(&le.1).map_err(at)?;
            let list = buckets.entry(family.clone()).or_default();
            if let Some((prev_le, prev)) = list.last() {
                if le <= *prev_le || value < *prev {
                    return Err(at("buckets not in order, or not cumulative".into()));
                }
            }
            list.push((le, value));
        }
        if name.ends_with("_count") && kind == "histogram" {
            counts.insert(family.clone(), value);
        }
        let key = line_main[..line_main.len() - rest.len()].to_string();
        if exp.samples.insert(key.clone(), value).is_some() {
            return Err(at(format!("series {key} twice")));
        }
    }
    for (family, list) in &buckets {
        match list.last() {
            Some((le, n)) if le.is_infinite() => {
                if counts.get(family) != Some(n) {
                    return Err(format!("{family}: _count is not the +Inf bucket"));
                }
            }
            _ => return Err(format!("{family}: no +Inf bucket")),
        }
    }
    for family in exp.families.keys() {
        for other in exp.families.keys() {
            if RESERVED
                .iter()
                .any(|s| other.strip_suffix(s) == Some(family.as_str()))
            {
                return Err(format!(
                    "families {family} and {other} clash: {other} is {family} plus a reserved suffix"
                ));
            }
        }
    }
    Ok(exp)
}

/// The family a written sample key belongs to (its name without a type suffix).
fn family_of<'a>(key: &'a str, families: &BTreeMap<String, String>) -> &'a str {
    let name = key.split('{').next().unwrap_or(key);
    for (family, kind) in families {
        if suffixes(kind)
            .iter()
            .any(|s| name.strip_suffix(s) == Some(family.as_str()))
        {
            return &name[..family.len()];
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::check;

    /// What the hub served before it moved to prometheus-client (a gauge
    /// `x` and a counter `x_total`), even with `# EOF` added.
    #[test]
    fn the_old_connections_clash_is_rejected() {
        let old = "# HELP sapha_hub_connections Open connections.\n# TYPE sapha_hub_connections gauge\nsapha_hub_connections 1\n# HELP sapha_hub_connections_total Connections accepted.\n# TYPE sapha_hub_connections_total counter\nsapha_hub_connections_total 3\n# EOF\n";
        let err = check(old).unwrap_err();
        assert!(err.contains("sapha_hub_connections_total"), "{err}");
        let fixed = "# TYPE sapha_hub_connections gauge\nsapha_hub_connections 1\n# TYPE sapha_hub_connections_opened counter\nsapha_hub_connections_opened_total 3\n# EOF\n";
        let exp = check(fixed).unwrap();
        assert_eq!(exp.get("sapha_hub_connections_opened_total"), Some(3.0));
    }

    #[test]
    fn each_rule_rejects_what_it_should() {
        for (text, why) in [
            ("a 1\n", "no EOF"),
            ("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n", "interleaved"),
            ("# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n", "TYPE twice"),
            ("# TYPE a counter\na 1\n# EOF\n", "counter sample without _total"),
            ("# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n# EOF\n", "label twice"),
            ("# TYPE a gauge\na 1\na 2\n# EOF\n", "series twice"),
            ("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\na_seconds 1\n# EOF\n", "unit"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n# EOF\n", "no +Inf"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# EOF\n", "not cumulative"),
        ] {
            assert!(check(text).is_err(), "{why} was accepted");
        }
    }
}
