//! Text splitting for DOM plugins (PLUGINS.md §0.2).

use std::ops::Range;
use unicode_segmentation::UnicodeSegmentation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// One box per grapheme (the recommended reading of the reference's UTF-16 split);
    /// each space is its own box, drawn as a no-break space of the same width.
    Chars,
    /// Words split on every single `' '`: the words (an empty word between two spaces)
    /// and, between them, the separating spaces as breakable `is_space` segments.
    Words,
    /// One box per code point (CWI letters); spaces become no-break-space boxes; an empty
    /// text gives one empty no-break-space letter.
    CwiLetters,
}

/// One piece of the node text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Byte range in the text.
    pub range: Range<usize>,
    /// A space: for `Chars`/`CwiLetters` a no-break-space box, for `Words` the breakable
    /// separator between two word boxes.
    pub is_space: bool,
}

impl Segment {
    /// True for the boxes that plugins animate: everything except `Words` separators.
    pub fn is_box(&self, kind: SplitKind) -> bool {
        !(kind == SplitKind::Words && self.is_space)
    }
}

pub fn split_text(text: &str, kind: SplitKind) -> Vec<Segment> {
    match kind {
        SplitKind::Chars => text
            .grapheme_indices(true)
            .map(|(i, g)| Segment {
                range: i..i + g.len(),
                is_space: g == " ",
            })
            .collect(),
        SplitKind::CwiLetters => {
            if text.is_empty() {
                return vec![Segment {
                    range: 0..0,
                    is_space: true,
                }];
            }
            text.char_indices()
                .map(|(i, c)| Segment {
                    range: i..i + c.len_utf8(),
                    is_space: c == ' ',
                })
                .collect()
        }
        SplitKind::Words => {
            let mut out = Vec::new();
            let mut start = 0;
            for (i, _) in text.match_indices(' ') {
                out.push(Segment {
                    range: start..i,
                    is_space: false,
                });
                out.push(Segment {
                    range: i..i + 1,
                    is_space: true,
                });
                start = i + 1;
            }
            out.push(Segment {
                range: start..text.len(),
                is_space: false,
            });
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, segs: &[Segment]) -> Vec<(&'a str, bool)> {
        segs.iter()
            .map(|s| (&text[s.range.clone()], s.is_space))
            .collect()
    }

    #[test]
    fn chars_by_grapheme_with_space_boxes() {
        let t = "a é👍🏽";
        let segs = split_text(t, SplitKind::Chars);
        assert_eq!(
            pieces(t, &segs),
            vec![("a", false), (" ", true), ("é", false), ("👍🏽", false)]
        );
        // Combining mark stays with its base.
        let t = "e\u{301}x";
        assert_eq!(split_text(t, SplitKind::Chars).len(), 2);
    }

    #[test]
    fn words_keep_empty_words_and_separators() {
        let t = "ab  cd";
        let segs = split_text(t, SplitKind::Words);
        assert_eq!(
            pieces(t, &segs),
            vec![
                ("ab", false),
                (" ", true),
                ("", false),
                (" ", true),
                ("cd", false)
            ]
        );
        assert_eq!(segs[2].range, 3..3);
        assert_eq!(
            segs.iter().filter(|s| s.is_box(SplitKind::Words)).count(),
            3
        );
        assert_eq!(
            pieces("", &split_text("", SplitKind::Words)),
            vec![("", false)]
        );
    }

    #[test]
    fn cwi_letters_by_code_point() {
        let t = "e\u{301} 👍🏽";
        let segs = split_text(t, SplitKind::CwiLetters);
        assert_eq!(
            pieces(t, &segs),
            vec![
                ("e", false),
                ("\u{301}", false),
                (" ", true),
                ("👍", false),
                ("🏽", false)
            ]
        );
        let empty = split_text("", SplitKind::CwiLetters);
        assert_eq!(
            empty,
            vec![Segment {
                range: 0..0,
                is_space: true
            }]
        );
    }
}
