//! Tokenizers: worked examples, round trips, specials, files.

use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer, CLS, MASK, PAD, SEP, SPECIALS, UNK};
use proptest::prelude::*;

#[test]
fn char_tokenizer_has_fixed_specials_and_sorted_characters() {
    let tok = CharTokenizer::from_text("banana!");
    assert_eq!((PAD, UNK, CLS, SEP, MASK), (0, 1, 2, 3, 4));
    assert_eq!(tok.vocab_size(), 5 + 4); // !, a, b, n
    assert_eq!(tok.encode("!abn"), vec![5, 6, 7, 8]); // sorted: '!' < 'a' < 'b' < 'n'
    assert_eq!(tok.encode("nab?"), vec![8, 6, 7, UNK]);
    assert_eq!(tok.decode(&tok.encode("banana!")), "banana!");
    assert_eq!(tok.decode(&[CLS, 7, MASK, SEP]), "[CLS]b[MASK][SEP]");
}

#[test]
#[should_panic(expected = "CharTokenizer: id 9 is out of range for a vocabulary of 9")]
fn char_decode_names_a_bad_id() {
    CharTokenizer::from_text("banana!").decode(&[9]);
}

#[test]
fn bpe_retells_the_wikipedia_example() {
    // "aaabdaaabac": aa -> Z, then (tie between Za and ab, both 2) ab -> Y, then ZY -> X,
    // leaving "XdXac" (Wikipedia's byte pair encoding article).
    let tok = BpeTokenizer::train("aaabdaaabac", 256 + 3 + SPECIALS.len());
    assert_eq!(tok.merges(), &[(97, 97), (97, 98), (256, 257)]);
    assert_eq!(
        tok.encode("aaabdaaabac"),
        vec![258, b'd' as usize, 258, b'a' as usize, b'c' as usize]
    );
    assert_eq!(tok.vocab_size(), 256 + 3 + 5);
    assert_eq!(tok.special(4), 256 + 3 + 4);
    assert_eq!(tok.decode(&[tok.special(4)]), "[MASK]");
}

#[test]
fn bpe_training_is_deterministic_and_stops_when_nothing_is_left() {
    let text = "the cat sat on the mat; the cat ate the rat";
    let (a, b) = (BpeTokenizer::train(text, 300), BpeTokenizer::train(text, 300));
    assert_eq!(a, b);
    // Asking for far more merges than the text supports stops early.
    let small = BpeTokenizer::train("ab ab", 400);
    assert!(small.merges().len() < 400 - 261);
}

#[test]
fn bpe_never_produces_special_ids() {
    let text = "[MASK] [CLS] a [SEP] [PAD] [UNK] ".repeat(20);
    let tok = BpeTokenizer::train(&text, 256 + 40 + 5);
    let ids = tok.encode(&text);
    assert!(
        ids.iter().all(|&id| id < tok.special(0)),
        "encode produced a special id"
    );
    assert_eq!(tok.decode(&ids), text);
}

#[test]
fn bpe_saves_and_loads_and_reports_bad_files_by_line() {
    let dir = std::env::temp_dir().join(format!("microlm-bpe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bpe.txt");
    let tok = BpeTokenizer::train("to be or not to be, that is the question", 256 + 20 + 5);
    tok.save(&path).unwrap();
    assert_eq!(BpeTokenizer::load(&path).unwrap(), tok);
    std::fs::write(&path, "microlm bpe v1\nmerges 2\n97 98\n300 5\n").unwrap();
    let e = BpeTokenizer::load(&path).unwrap_err();
    assert!(e.contains("line 4") && e.contains("not yet defined"), "{e}");
    std::fs::write(&path, "not a tokenizer\n").unwrap();
    assert!(BpeTokenizer::load(&path).unwrap_err().contains("line 1"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn trained() -> BpeTokenizer {
    let text = "Héllo wörld! Ça va? 日本語のテキスト. Emoji: 😀🚀👍🏽 naïve café. The the the.\n".repeat(5);
    BpeTokenizer::train(&text, 256 + 60 + 5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256), failure_persistence: None, ..ProptestConfig::default() })]

    /// decode(encode(s)) == s for any string: ASCII, accents, CJK, emoji, control characters.
    #[test]
    fn bpe_round_trips_every_string(s in "\\PC*|[a-zé日😀 \\n]{0,40}") {
        let tok = trained();
        prop_assert_eq!(tok.decode(&tok.encode(&s)), s);
    }

    #[test]
    fn char_round_trips_text_it_was_built_from(s in "\\PC{0,40}") {
        let tok = CharTokenizer::from_text(&s);
        prop_assert_eq!(tok.decode(&tok.encode(&s)), s);
    }
}

/// A BPE token holding part of a multi-byte character is shown as its bytes, `<0xNN>`, where
/// decoding it alone gives U+FFFD; whole characters and specials read as text. "é" is the
/// bytes C3 A9, "’" is E2 80 99 (worked by hand from UTF-8).
#[test]
fn bpe_token_text_shows_partial_characters_as_bytes() {
    let e = 0xC3; // first byte of "é"
    let bpe = BpeTokenizer::from_merges(vec![(e, 0xA9), (b'a' as usize, e)]);
    assert_eq!(bpe.encode("é"), vec![256]);
    assert_eq!(bpe.decode(&[e]), "\u{FFFD}", "what the printouts showed before");
    assert_eq!(bpe.token_text(e), "<0xC3>");
    assert_eq!(bpe.token_text(0xA9), "<0xA9>");
    assert_eq!(bpe.token_text(256), "é");
    assert_eq!(bpe.token_text(257), "a<0xC3>");
    assert_eq!(bpe.token_text(b'q' as usize), "q");
    assert_eq!(bpe.token_text(0xE2), "<0xE2>");
    assert_eq!(bpe.token_text(bpe.special(4)), "[MASK]");
    let tok = Tokenizer::Bpe(bpe);
    assert_eq!(tok.token_text(0x80), "<0x80>");
    let chars = Tokenizer::Char(CharTokenizer::from_text("ab"));
    assert_eq!(chars.token_text(6), "b");
}

/// The fill-mask context line: the runs between the blanks are decoded whole, so an "é" split
/// into its two bytes reads "é", not two U+FFFD.
#[test]
fn blanked_text_decodes_the_runs_between_blanks_whole() {
    use microlm::inspect::blanked_text;
    let tok = Tokenizer::Bpe(BpeTokenizer::from_merges(Vec::new()));
    let ids = tok.encode("café, né");
    assert_eq!(ids.len(), 10, "one token per byte");
    // Bytes c a f C3 A9 , ␣ n C3 A9; positions counted from 100: blank the "a" (101), the "n" (107).
    assert_eq!(blanked_text(&tok, &ids, &[101, 107], 100), "c_fé, _é");
    assert_eq!(blanked_text(&tok, &ids, &[], 0), "café, né");
    assert_eq!(blanked_text(&tok, &ids, &[0, 1], 0), "__fé, né");
    // Per token, as before: each byte of "é" alone is U+FFFD.
    let per_token: String = ids.iter().map(|&id| tok.decode(&[id])).collect();
    assert_eq!(per_token, "caf\u{FFFD}\u{FFFD}, n\u{FFFD}\u{FFFD}");
    // A character tokenizer shows the same as one token at a time.
    let chars = Tokenizer::Char(CharTokenizer::from_text("abc"));
    let ids = chars.encode("abcab");
    assert_eq!(blanked_text(&chars, &ids, &[2], 0), "ab_ab");
}
