//! Loading, splitting and batching text.

use microlm::data::{load_text, split, Windows};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microlm-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_files_get_errors_that_say_what_is_wrong() {
    let e = load_text(&PathBuf::from("/no/such/corpus.txt")).unwrap_err();
    assert!(e.contains("cannot read /no/such/corpus.txt"), "{e}");
    let e = load_text(&tmp("empty.txt", b"")).unwrap_err();
    assert!(e.contains("empty.txt is empty"), "{e}");
    // "héllo" with the second byte of its é broken: the invalid sequence starts at offset 1.
    let e = load_text(&tmp("bad.txt", b"h\xc3\x28llo")).unwrap_err();
    assert!(e.contains("not valid UTF-8") && e.contains("byte offset 1"), "{e}");
    assert_eq!(load_text(&tmp("ok.txt", "héllo".as_bytes())).unwrap(), "héllo");
    let ids: Vec<usize> = (0..10).collect();
    let e = Windows::new(&ids, 11, "ok.txt").unwrap_err();
    assert!(
        e.contains("ok.txt has 10 tokens, shorter than one training sequence of 11"),
        "{e}"
    );
}

#[test]
fn the_split_is_the_first_ninety_percent_then_the_rest() {
    let ids: Vec<usize> = (0..1000).collect();
    let (train, val) = split(&ids, 0.9);
    assert_eq!((train.len(), val.len()), (900, 100));
    assert_eq!((train[899], val[0]), (899, 900));
}

#[test]
fn windows_are_contiguous_in_range_and_seeded() {
    let ids: Vec<usize> = (0..500).collect();
    let w = Windows::new(&ids, 16, "stream").unwrap();
    let a = w.batch(8, &mut StdRng::seed_from_u64(3));
    let b = w.batch(8, &mut StdRng::seed_from_u64(3));
    let c = w.batch(8, &mut StdRng::seed_from_u64(4));
    assert_eq!(a, b, "same seed, same batch");
    assert_ne!(a, c);
    assert_eq!(a.ids.len(), 8 * 16);
    for row in a.ids.chunks(16) {
        assert!(
            row.windows(2).all(|p| p[1] == p[0] + 1),
            "a window is consecutive tokens"
        );
        assert!(*row.last().unwrap() < 500);
    }
    // Over many draws every start offset 0..=484 is possible, including both ends.
    let starts: std::collections::HashSet<usize> = (0..200)
        .flat_map(|s| {
            w.batch(50, &mut StdRng::seed_from_u64(s))
                .ids
                .chunks(16)
                .map(|r| r[0])
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(starts.contains(&0) && starts.contains(&484) && starts.iter().all(|&s| s <= 484));
}
