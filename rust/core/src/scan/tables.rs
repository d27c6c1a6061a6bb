//! Character tables of the normalised view. The pure-Python twin
//! (`python/proxilion/_reference/scan.py`) holds the same tables; a test compares them.

/// Code points removed from the view: zero-width characters, bidi and other format
/// controls, variation selectors, Hangul fillers and Unicode tag controls. Inclusive ranges,
/// sorted.
pub const REMOVED: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x061C, 0x061C),   // Arabic letter mark
    (0x115F, 0x1160),   // Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian variation selectors, vowel separator
    (0x200B, 0x200F),   // zero-width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x206F),   // word joiner, invisible operators, bidi isolates, deprecated
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
    (0xFFF9, 0xFFFB),   // interlinear annotation controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0000, 0xE001F), // tag controls
    (0xE007F, 0xE007F), // cancel tag
    (0xE0100, 0xE01EF), // variation selectors supplement
];

/// Unicode tag characters U+E0020..U+E007E spell ASCII invisibly ("ASCII smuggling"); the
/// view shows them as the ASCII character they encode.
pub const TAG_FIRST: u32 = 0xE0020;
pub const TAG_LAST: u32 = 0xE007E;

/// Look-alike letters that survive NFKC, mapped to the ASCII letter they imitate (same case).
/// Sorted by code point.
pub const CONFUSABLES: &[(char, char)] = &[
    ('\u{0130}', 'I'), // Latin capital I with dot above
    ('\u{0131}', 'i'), // Latin small dotless i
    ('\u{0237}', 'j'), // Latin small dotless j
    ('\u{0251}', 'a'), // Latin small alpha
    ('\u{0261}', 'g'), // Latin small script g
    ('\u{0262}', 'g'), // Latin letter small capital G
    ('\u{0269}', 'i'), // Latin small iota
    ('\u{026A}', 'i'), // small capital I
    ('\u{0274}', 'n'), // small capital N
    ('\u{0280}', 'r'), // small capital R
    ('\u{028F}', 'y'), // small capital Y
    ('\u{0299}', 'b'), // small capital B
    ('\u{029C}', 'h'), // small capital H
    ('\u{029F}', 'l'), // small capital L
    ('\u{0391}', 'A'),
    ('\u{0392}', 'B'),
    ('\u{0395}', 'E'),
    ('\u{0396}', 'Z'),
    ('\u{0397}', 'H'),
    ('\u{0399}', 'I'),
    ('\u{039A}', 'K'),
    ('\u{039C}', 'M'),
    ('\u{039D}', 'N'),
    ('\u{039F}', 'O'),
    ('\u{03A1}', 'P'),
    ('\u{03A4}', 'T'),
    ('\u{03A5}', 'Y'),
    ('\u{03A7}', 'X'),
    ('\u{03B1}', 'a'),
    ('\u{03B5}', 'e'),
    ('\u{03B9}', 'i'),
    ('\u{03BA}', 'k'),
    ('\u{03BD}', 'v'),
    ('\u{03BF}', 'o'),
    ('\u{03C1}', 'p'),
    ('\u{03C5}', 'u'),
    ('\u{03C7}', 'x'),
    ('\u{0405}', 'S'), // Cyrillic
    ('\u{0406}', 'I'),
    ('\u{0408}', 'J'),
    ('\u{0410}', 'A'),
    ('\u{0412}', 'B'),
    ('\u{0415}', 'E'),
    ('\u{041A}', 'K'),
    ('\u{041C}', 'M'),
    ('\u{041D}', 'H'),
    ('\u{041E}', 'O'),
    ('\u{0420}', 'P'),
    ('\u{0421}', 'C'),
    ('\u{0422}', 'T'),
    ('\u{0423}', 'Y'),
    ('\u{0425}', 'X'),
    ('\u{0430}', 'a'),
    ('\u{0435}', 'e'),
    ('\u{043E}', 'o'),
    ('\u{0440}', 'p'),
    ('\u{0441}', 'c'),
    ('\u{0443}', 'y'),
    ('\u{0445}', 'x'),
    ('\u{0455}', 's'),
    ('\u{0456}', 'i'),
    ('\u{0458}', 'j'),
    ('\u{0461}', 'w'),
    ('\u{0474}', 'V'),
    ('\u{0475}', 'v'),
    ('\u{04AE}', 'Y'),
    ('\u{04AF}', 'y'),
    ('\u{04BB}', 'h'),
    ('\u{04C0}', 'I'),
    ('\u{04CF}', 'l'),
    ('\u{0501}', 'd'),
    ('\u{051B}', 'q'),
    ('\u{051D}', 'w'),
    ('\u{0570}', 'h'), // Armenian
    ('\u{0578}', 'n'),
    ('\u{057D}', 'u'),
    ('\u{0581}', 'g'),
    ('\u{0585}', 'o'),
    ('\u{13A0}', 'D'), // Cherokee
    ('\u{13A1}', 'R'),
    ('\u{13A2}', 'T'),
    ('\u{13A9}', 'Y'),
    ('\u{13AA}', 'A'),
    ('\u{13AB}', 'J'),
    ('\u{13AC}', 'E'),
    ('\u{13B3}', 'W'),
    ('\u{13B7}', 'M'),
    ('\u{13BB}', 'H'),
    ('\u{13C0}', 'G'),
    ('\u{13C3}', 'Z'),
    ('\u{13CF}', 'b'),
    ('\u{13DA}', 'S'),
    ('\u{13DE}', 'L'),
    ('\u{13DF}', 'C'),
    ('\u{13E2}', 'P'),
    ('\u{13E6}', 'K'),
    ('\u{1D00}', 'a'), // small capitals
    ('\u{1D04}', 'c'),
    ('\u{1D05}', 'd'),
    ('\u{1D07}', 'e'),
    ('\u{1D0A}', 'j'),
    ('\u{1D0B}', 'k'),
    ('\u{1D0D}', 'm'),
    ('\u{1D0F}', 'o'),
    ('\u{1D18}', 'p'),
    ('\u{1D1B}', 't'),
    ('\u{1D1C}', 'u'),
    ('\u{1D20}', 'v'),
    ('\u{1D21}', 'w'),
    ('\u{1D22}', 'z'),
    ('\u{A730}', 'f'),
    ('\u{A731}', 's'),
];

/// Characters (besides ASCII non-letters) that separate words for the confusable rule.
pub const WORD_SEPARATORS: &[char] = &['\u{0085}', '\u{1680}', '\u{2028}', '\u{2029}'];

pub fn is_removed(c: char) -> bool {
    let c = c as u32;
    if c < 0xAD {
        return false;
    }
    REMOVED
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

pub fn confusable(c: char) -> Option<char> {
    if c.is_ascii() {
        return None;
    }
    CONFUSABLES
        .binary_search_by_key(&c, |&(k, _)| k)
        .ok()
        .map(|i| CONFUSABLES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted() {
        assert!(REMOVED.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(REMOVED.iter().all(|&(lo, hi)| lo <= hi));
        assert!(CONFUSABLES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CONFUSABLES.iter().all(|&(_, v)| v.is_ascii_alphabetic()));
    }

    #[test]
    fn lookups() {
        assert!(is_removed('\u{200B}'));
        assert!(is_removed('\u{202E}'));
        assert!(is_removed('\u{E0001}'));
        assert!(!is_removed('a'));
        assert!(!is_removed('\u{E0041}'));
        assert_eq!(confusable('\u{0430}'), Some('a'));
        assert_eq!(confusable('a'), None);
        assert_eq!(confusable('\u{0436}'), None);
    }
}
