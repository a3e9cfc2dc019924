//! Property tests of parallel whole-object reads (`prefix_then_parts`):
//! whatever the object's size, the part size, the number of transfers,
//! how the answers are cut into pieces and where they break off, the body
//! is the object, byte for byte, and no range is asked for twice unless an
//! answer broke off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use proptest::prelude::*;
use storage_core::{ByteStream, Bytes, Error, ErrorKind, Result, prefix_then_parts};

/// A small deterministic generator, so each case replays from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

/// `bytes` of the object from `start`, in pieces of random sizes; when
/// `break_off`, the answer stops after a random non-empty prefix, by
/// ending or by a retryable error.
fn answer(object: &Bytes, range: Range<u64>, dice: &mut Dice, break_off: bool) -> ByteStream {
    let whole = object.slice(range.start as usize..range.end as usize);
    let end = if break_off && whole.len() > 1 {
        1 + dice.roll(whole.len() as u64 - 1) as usize
    } else {
        whole.len()
    };
    let mut pieces: Vec<Result<Bytes>> = Vec::new();
    let mut at = 0;
    while at < end {
        let take = (1 + dice.roll(64) as usize).min(end - at);
        pieces.push(Ok(whole.slice(at..at + take)));
        at += take;
    }
    if end < whole.len() && dice.roll(2) == 0 {
        pieces.push(Err(
            Error::new(ErrorKind::Unavailable, "reset").with_retryable(true)
        ));
    }
    stream::iter(pieces).boxed()
}

fn read_all(body: ByteStream) -> Result<Vec<u8>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let chunks: Vec<Bytes> = body.try_collect().await?;
        Ok(chunks.concat())
    })
}

proptest! {
    #[test]
    fn the_body_is_the_object_whatever_the_answers_break_off(
        size in 2u64..3000,
        chunk in 1u64..700,
        concurrency in 1usize..6,
        breaks in 0u64..4,
        seed in any::<u64>(),
    ) {
        prop_assume!(size > chunk);
        let object = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
        let dice = Arc::new(Mutex::new(Dice(seed | 1)));
        let asked = Arc::new(Mutex::new(Vec::<Range<u64>>::new()));
        // One answer in `breaks + 1` breaks off (none when `breaks` is 0).
        let breaking = move |dice: &mut Dice| breaks > 0 && dice.roll(breaks + 1) == 0;
        let first = {
            let mut dice = dice.lock().unwrap();
            let break_off = breaking(&mut dice);
            // The first answer is for the whole object.
            answer(&object, 0..size, &mut dice, break_off)
        };
        let request = {
            let (object, dice, asked) = (object.clone(), Arc::clone(&dice), Arc::clone(&asked));
            move |range: Range<u64>| {
                asked.lock().unwrap().push(range.clone());
                let mut dice = dice.lock().unwrap();
                let break_off = breaking(&mut dice);
                futures::future::ready(Ok(answer(&object, range, &mut dice, break_off)))
            }
        };
        let body = prefix_then_parts(first, chunk, size, request, concurrency);
        let read = read_all(body).unwrap();
        prop_assert!(read == object, "the body differs from the object");
        let asked = asked.lock().unwrap();
        let parts = size.div_ceil(chunk) - 1;
        if breaks == 0 {
            // Each part once, in order.
            let expected: Vec<Range<u64>> = (1..=parts)
                .map(|n| n * chunk..((n + 1) * chunk).min(size))
                .collect();
            prop_assert_eq!(&*asked, &expected);
        } else {
            // Every range asked for lies inside one part.
            for range in asked.iter() {
                prop_assert!(range.start < range.end && range.end <= size);
                prop_assert_eq!(range.start / chunk, (range.end - 1) / chunk);
            }
        }
    }
}
