//! The safetensors file, written byte for byte here so that it is the same every time: the
//! 8-byte little-endian header length, the JSON header with its keys in sorted order
//! (`__metadata__` first, its keys sorted, then the tensors by name), padded with spaces to a
//! multiple of 8 bytes, then each tensor's little-endian f32s in the header's order.
//!
//! The `safetensors` crate's own writer takes the metadata as a `HashMap`, whose order changes
//! from run to run; two identical runs then wrote files whose `sha256sum`s differed. The crate
//! still reads every file (the format is its: <https://github.com/huggingface/safetensors>).

use std::collections::BTreeMap;

/// One tensor to write: its name, shape and values.
pub struct Entry<'a> {
    /// The tensor's name in the header.
    pub name: &'a str,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its values in row-major order.
    pub values: Vec<f32>,
}

/// The whole file: header length, sorted JSON header, data. `entries` are sorted by name here.
pub fn file_bytes(mut entries: Vec<Entry<'_>>, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    entries.sort_by(|a, b| a.name.cmp(b.name));
    let mut fields: Vec<String> = Vec::with_capacity(entries.len() + 1);
    if !metadata.is_empty() {
        let pairs: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
            .collect();
        fields.push(format!("\"__metadata__\":{{{}}}", pairs.join(",")));
    }
    let mut offset = 0usize;
    for e in &entries {
        let end = offset + 4 * e.values.len();
        let shape: Vec<String> = e.shape.iter().map(|d| d.to_string()).collect();
        fields.push(format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_string(e.name),
            shape.join(",")
        ));
        offset = end;
    }
    let mut header = format!("{{{}}}", fields.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for e in &entries {
        out.extend(e.values.iter().flat_map(|x| x.to_le_bytes()));
    }
    out
}

/// `s` as a JSON string: quotes and backslashes escaped, control characters as `\uXXXX`
/// (or their short forms), everything else as is (JSON is UTF-8).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
