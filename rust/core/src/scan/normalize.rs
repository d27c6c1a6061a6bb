//! The normalised view of a text, and the map from view characters back to the original.
//!
//! The view is built per *cluster*: a character of canonical combining class 0 followed by
//! any characters of non-zero class (after removing invisible characters). Each cluster is:
//!
//! 1. stripped of removed characters ([`REMOVED`](super::tables::REMOVED)); tag characters become ASCII;
//! 2. NFKC-normalised as a unit;
//! 3. if its normalised form starts with an ASCII character, stripped of the combining
//!    marks left over (strike-through, "Zalgo" and accent overlays on Latin letters);
//! 4. `\x1c`..`\x1f` (which Python's `\s` counts as space and Rust's does not) become `' '`.
//!
//! Then look-alike letters ([`CONFUSABLES`](super::tables::CONFUSABLES)) are mapped to ASCII inside each *word*
//! (a maximal run of characters other than ASCII non-letters and line/paragraph separators)
//! that contains an ASCII letter or consists only of look-alikes. Words written entirely in
//! another script keep their letters.
//!
//! Case is not folded in the view: the engines match case-insensitively (Unicode simple case
//! folding), and the confusable table covers the letters simple folding misses (`İ`, `ı`).
//!
//! Every view character maps to the original character range `[start, end)` (in code points,
//! i.e. Python `str` indices) of the cluster it came from.

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

use super::tables::{confusable, is_removed, TAG_FIRST, TAG_LAST, WORD_SEPARATORS};

/// The normalised view of one text.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The view text, or `None` when it equals the original.
    text: Option<String>,
    /// Per view character, the original character range; `None` for the identity map.
    map: Option<Vec<(u32, u32)>>,
    /// The view text is ASCII (byte offsets are character offsets).
    ascii: bool,
}

fn needs_space(c: char) -> bool {
    ('\x1c'..='\x1f').contains(&c)
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        !c.is_ascii_alphabetic()
    } else {
        WORD_SEPARATORS.contains(&c)
    }
}

/// True when `bytes` is ASCII without the separators U+001C..U+001F, i.e. the view of the
/// text is the text itself. Eight bytes per step (the common case on every guard check).
fn plain_ascii(bytes: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const SEP_MASK: u64 = 0xFCFC_FCFC_FCFC_FCFC;
    const SEP: u64 = 0x1C1C_1C1C_1C1C_1C1C;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let w = u64::from_le_bytes(a);
        // A byte of `v` is zero exactly where the byte of `w` is 0x1C..=0x1F.
        let v = (w & SEP_MASK) ^ SEP;
        if w & HI != 0 || v.wrapping_sub(LO) & !v & HI != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b.is_ascii() && !(0x1c..=0x1f).contains(&b))
}

impl View {
    /// Build the view of `text`.
    pub fn new(text: &str) -> View {
        let bytes = text.as_bytes();
        if plain_ascii(bytes) {
            return View {
                text: None,
                map: None,
                ascii: true,
            };
        }
        if bytes.is_ascii() {
            let t: String = text
                .chars()
                .map(|c| if needs_space(c) { ' ' } else { c })
                .collect();
            return View {
                text: Some(t),
                map: None,
                ascii: true,
            };
        }
        let mut b = Builder::with_capacity(text.len());
        let mut cluster = String::new();
        let mut cstart: u32 = 0;
        let mut cend: u32 = 0;
        for (i, c) in text.chars().enumerate() {
            let i = i as u32;
            if is_removed(c) {
                continue;
            }
            let c = if (TAG_FIRST..=TAG_LAST).contains(&(c as u32)) {
                char::from((c as u32 - 0xE0000) as u8)
            } else {
                c
            };
            if !c.is_ascii() && !cluster.is_empty() && canonical_combining_class(c) != 0 {
                cluster.push(c);
                cend = i + 1;
                continue;
            }
            b.flush(&cluster, cstart, cend);
            cluster.clear();
            cluster.push(c);
            cstart = i;
            cend = i + 1;
        }
        b.flush(&cluster, cstart, cend);
        b.finish()
    }

    /// The view text (borrowing `original` when they are equal).
    pub fn text<'a>(&'a self, original: &'a str) -> &'a str {
        self.text.as_deref().unwrap_or(original)
    }

    /// True when view offsets are original offsets (the identity map).
    pub fn is_identity(&self) -> bool {
        self.map.is_none()
    }

    /// True when the view text is the original text itself (not just the same offsets).
    pub fn is_original(&self) -> bool {
        self.text.is_none()
    }

    /// True when the view is ASCII, so its byte offsets are character offsets.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// Number of characters in the view (given the original, for the identity case).
    pub fn char_len(&self, original: &str) -> usize {
        match &self.map {
            Some(m) => m.len(),
            None => {
                if self.ascii {
                    self.text(original).len()
                } else {
                    self.text(original).chars().count()
                }
            }
        }
    }

    /// Map a span in view *character* offsets to original character offsets.
    /// `orig_len` is the original length in characters.
    pub fn map_span(&self, start: usize, end: usize, orig_len: usize) -> (usize, usize) {
        let Some(map) = &self.map else {
            return (start, end);
        };
        if start >= end {
            let p = map.get(start).map_or(orig_len, |r| r.0 as usize);
            return (p, p);
        }
        let s = map.get(start).map_or(orig_len, |r| r.0 as usize);
        let e = map.get(end - 1).map_or(orig_len, |r| r.1 as usize);
        (s, e)
    }
}

struct Builder {
    out: String,
    map: Vec<(u32, u32)>,
    has_confusable: bool,
}

impl Builder {
    fn with_capacity(n: usize) -> Builder {
        Builder {
            out: String::with_capacity(n),
            map: Vec::with_capacity(n),
            has_confusable: false,
        }
    }

    fn push(&mut self, c: char, start: u32, end: u32) {
        let c = if needs_space(c) { ' ' } else { c };
        if !c.is_ascii() && confusable(c).is_some() {
            self.has_confusable = true;
        }
        self.out.push(c);
        self.map.push((start, end));
    }

    fn flush(&mut self, cluster: &str, start: u32, end: u32) {
        let mut it = cluster.chars();
        let Some(first) = it.next() else { return };
        let single = it.next().is_none();
        if single && first.is_ascii() {
            self.push(first, start, end);
            return;
        }
        let norm: String = cluster.nfkc().collect();
        let strip = norm.chars().next().is_some_and(|c| c.is_ascii());
        for c in norm.chars() {
            if strip && !c.is_ascii() && canonical_combining_class(c) != 0 {
                continue;
            }
            self.push(c, start, end);
        }
    }

    fn finish(self) -> View {
        let Builder {
            out,
            map,
            has_confusable,
        } = self;
        let out = if has_confusable {
            map_confusables(&out)
        } else {
            out
        };
        let ascii = out.is_ascii();
        View {
            text: Some(out),
            map: Some(map),
            ascii,
        }
    }
}

/// Apply the confusable rule word by word (one output character per input character).
fn map_confusables(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_separator(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        let mut has_ascii = false;
        let mut all_conf = true;
        while j < chars.len() && !is_separator(chars[j]) {
            let c = chars[j];
            if c.is_ascii() {
                has_ascii = true;
            } else if confusable(c).is_none() {
                all_conf = false;
            }
            j += 1;
        }
        let map = has_ascii || all_conf;
        for &c in &chars[i..j] {
            match (map, confusable(c)) {
                (true, Some(m)) => out.push(m),
                _ => out.push(c),
            }
        }
        i = j;
    }
    out
}

/// The view text alone (for display and tests).
pub fn normalize(text: &str) -> String {
    View::new(text).text(text).to_owned()
}

/// Decode Python's `surrogatepass` UTF-8 (lone surrogates encoded as 3-byte sequences) into
/// a `String`, replacing each surrogate with U+FFFD so character indices are preserved.
pub fn decode_surrogatepass(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let skip = if bad.len() >= 3
                    && bad[0] == 0xED
                    && (0xA0..=0xBF).contains(&bad[1])
                    && (0x80..=0xBF).contains(&bad[2])
                {
                    3
                } else {
                    e.error_len().unwrap_or(bad.len()).max(1)
                };
                out.push('\u{FFFD}');
                rest = &bad[skip..];
            }
        }
    }
}

/// Convert byte offsets of `s` to character offsets, in place. Offsets must be on character
/// boundaries and at most `s.len()`.
pub fn bytes_to_chars(s: &str, offsets: &mut [usize]) {
    if s.is_ascii() || offsets.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_unstable_by_key(|&k| offsets[k]);
    let bytes = s.as_bytes();
    let mut pos = 0usize;
    let mut count = 0usize;
    for k in order {
        let target = offsets[k];
        if target > pos {
            count += bytes[pos..target]
                .iter()
                .filter(|&&b| (b as i8) >= -0x40)
                .count();
            pos = target;
        }
        offsets[k] = count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_agrees_with_the_byte_rule() {
        let slow = |b: &[u8]| b.iter().all(|&x| x < 0x80 && !(0x1c..=0x1f).contains(&x));
        for len in 0..40 {
            for pos in 0..len {
                for bad in [
                    0x1b_u8, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x3c, 0x7f, 0x80, 0x9c, 0xff,
                ] {
                    let mut v = vec![b'a'; len];
                    v[pos] = bad;
                    assert_eq!(
                        plain_ascii(&v),
                        slow(&v),
                        "len {len} pos {pos} byte {bad:#x}"
                    );
                }
            }
            assert!(plain_ascii(&vec![b'z'; len]));
        }
    }

    fn spans(text: &str, view_start: usize, view_end: usize) -> (usize, usize) {
        let v = View::new(text);
        v.map_span(view_start, view_end, text.chars().count())
    }

    #[test]
    fn ascii_is_identity() {
        let v = View::new("Ignore previous instructions");
        assert!(v.is_identity() && v.is_ascii());
        assert_eq!(
            v.text("Ignore previous instructions"),
            "Ignore previous instructions"
        );
        assert_eq!(normalize("a\x1cb"), "a b");
    }

    #[test]
    fn removes_invisibles_and_maps_back() {
        let t = "ign\u{200B}ore";
        assert_eq!(normalize(t), "ignore");
        // "ignore" in the view covers the whole original, zero-width space included.
        assert_eq!(spans(t, 0, 6), (0, 7));
        assert_eq!(spans(t, 3, 6), (4, 7));
    }

    #[test]
    fn nfkc_and_marks() {
        assert_eq!(normalize("ｉｇｎｏｒｅ"), "ignore");
        assert_eq!(normalize("\u{FB01}le"), "file");
        // "ﬁ" expands to two view characters that both map to original [0, 1).
        assert_eq!(spans("\u{FB01}le", 1, 2), (0, 1));
        assert_eq!(normalize("i\u{0336}g\u{0336}n"), "ign");
        assert_eq!(normalize("e\u{0301}"), "\u{E9}");
        assert_eq!(normalize("\u{1D422}\u{1D420}"), "ig");
    }

    #[test]
    fn confusables_in_latin_words_only() {
        // Cyrillic о and е in a Latin word.
        assert_eq!(normalize("ign\u{043E}r\u{0435} this"), "ignore this");
        // A word entirely of look-alikes is mapped too.
        assert_eq!(normalize("\u{0441}\u{043E}\u{0440}"), "cop");
        // A Russian word with non-look-alike letters is kept.
        assert_eq!(
            normalize("\u{043F}\u{0440}\u{0438}\u{0432}\u{0435}\u{0442}"),
            "привет"
        );
        assert_eq!(normalize("\u{0130}GNORE"), "IGNORE");
    }

    #[test]
    fn tags_become_ascii() {
        assert_eq!(normalize("x\u{E0069}\u{E0067}"), "xig");
        assert_eq!(normalize("\u{E0001}a"), "a");
    }

    #[test]
    fn surrogatepass() {
        assert_eq!(decode_surrogatepass(b"a\xed\xa0\x80b"), "a\u{FFFD}b");
        assert_eq!(decode_surrogatepass("héllo".as_bytes()), "héllo");
        assert_eq!(decode_surrogatepass(b"\xff"), "\u{FFFD}");
    }

    #[test]
    fn byte_offsets_to_chars() {
        let s = "héllo wörld";
        let mut o = vec![s.find('w').unwrap(), 0, s.len(), 3];
        bytes_to_chars(s, &mut o);
        assert_eq!(o, vec![6, 0, 11, 2]);
    }
}
