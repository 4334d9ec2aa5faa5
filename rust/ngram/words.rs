//! Word-level vocabularies: tokens are the white-space separated words of a text (Python's
//! `str.split()`), numbered by a table; a word not in it is `<unk>` (or an error without one).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel::shares;
use crate::tokenize::is_py_space;

/// A vocabulary held once: the words one after another in one string, where each ends, and an
/// open-addressing table of ids (at most half full) keyed by the words' hashes: 12-20 bytes a
/// word beside its text, where a `HashMap<String, u32>` took about 110 (a `String` and its heap
/// block a word, and the map's entries).
#[derive(Clone, Debug, PartialEq)]
pub struct WordIndex {
    text: String,
    ends: Vec<u32>,
    /// `id + 1` of the word in each slot, 0 for an empty slot.
    slots: Vec<u32>,
    unk: Option<u32>,
}

#[inline]
fn word_hash(w: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(w)
}

impl WordIndex {
    /// `words[i]` has id `i`; `unk` is the id unknown words take.
    pub fn new<S: AsRef<str>>(words: &[S], unk: Option<u32>) -> Result<Self> {
        if words.len() >= u32::MAX as usize {
            return Err(Error::invalid("vocab", "more than 4,294,967,294 words"));
        }
        let bytes: usize = words.iter().map(|w| w.as_ref().len()).sum();
        if bytes > u32::MAX as usize {
            return Err(Error::invalid("vocab", "the words take more than 4 GiB"));
        }
        let mut text = String::with_capacity(bytes);
        let mut ends = Vec::with_capacity(words.len());
        for w in words {
            text.push_str(w.as_ref());
            ends.push(text.len() as u32);
        }
        let mut index = WordIndex {
            text,
            ends,
            slots: vec![0; (2 * words.len()).next_power_of_two().max(2)],
            unk: None,
        };
        for (i, w) in words.iter().enumerate() {
            let w = w.as_ref();
            match index.probe(w) {
                Ok(at) => index.slots[at] = i as u32 + 1,
                Err(_) => return Err(Error::invalid("vocab", format!("{w:?} appears twice"))),
            }
        }
        if let Some(u) = unk {
            if u as usize >= words.len() {
                return Err(Error::invalid("unk", format!("id {u} is out of range")));
            }
        }
        index.unk = unk;
        Ok(index)
    }

    /// Adds `word` where it is not in the vocabulary yet (with the next id); whether it was
    /// added. The table doubles as it fills, so a vocabulary can be gathered word by word
    /// (see [`WordIndex::sorted`]) in about the memory it then takes.
    pub fn insert(&mut self, word: &str) -> Result<bool> {
        let Ok(at) = self.probe(word) else {
            return Ok(false);
        };
        if self.ends.len() + 1 >= u32::MAX as usize {
            return Err(Error::invalid("vocab", "more than 4,294,967,294 words"));
        }
        if self.text.len() + word.len() > u32::MAX as usize {
            return Err(Error::invalid("vocab", "the words take more than 4 GiB"));
        }
        self.text.push_str(word);
        self.ends.push(self.text.len() as u32);
        self.slots[at] = self.ends.len() as u32;
        if 2 * self.ends.len() > self.slots.len() {
            // (the words are distinct: each finds an empty slot of the doubled table)
            self.slots = vec![0; 2 * self.slots.len()];
            for id in 0..self.ends.len() as u32 {
                if let Ok(at) = self.probe(self.word(id)) {
                    self.slots[at] = id + 1;
                }
            }
        }
        Ok(true)
    }

    /// The same words numbered in code point order, `first` (if given) before them with id 0
    /// and taken as `<unk>`.
    pub fn sorted(&self, first: Option<&str>) -> Result<WordIndex> {
        let mut words: Vec<&str> = (0..self.len() as u32)
            .map(|i| self.word(i))
            .filter(|&w| Some(w) != first)
            .collect();
        words.sort_unstable();
        if let Some(f) = first {
            words.insert(0, f);
        }
        WordIndex::new(&words, first.map(|_| 0))
    }

    /// The id unknown words take, if any.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Word `id` (`id < len()`).
    pub fn word(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The id of `word`, if it is in the vocabulary (`<unk>` is not taken for it).
    pub fn get(&self, word: &str) -> Option<u32> {
        self.probe(word).err()
    }

    /// Where `word` is in the table: `Err(id)` where it is, else `Ok` of the empty slot it
    /// would take.
    fn probe(&self, word: &str) -> std::result::Result<usize, u32> {
        let mask = self.slots.len() - 1;
        let mut at = word_hash(word) as usize & mask;
        loop {
            match self.slots[at] {
                0 => return Ok(at),
                s if self.word(s - 1) == word => return Err(s - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    #[inline]
    fn id(&self, word: &str) -> Result<u32> {
        match self.get(word) {
            Some(id) => Ok(id),
            None => self
                .unk
                .ok_or_else(|| Error::UnknownToken(word.to_string())),
        }
    }

    /// Appends the ids of the words of `text`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        for w in text.split(is_py_space).filter(|w| !w.is_empty()) {
            out.push(self.id(w)?);
        }
        Ok(())
    }

    /// Appends the ids of `tokens`.
    pub fn encode_tokens<S: AsRef<str>>(&self, tokens: &[S], out: &mut Vec<u32>) -> Result<()> {
        for t in tokens {
            out.push(self.id(t.as_ref())?);
        }
        Ok(())
    }

    /// The ids of every text one after another, and where each ends; in parallel, in shares of
    /// about equal length (one buffer per share, not per text).
    pub fn encode_texts<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<(Vec<u32>, Vec<usize>)> {
        let parts: Vec<(Vec<u32>, Vec<usize>)> = shares(texts, |t| t.as_ref().len() / 4)
            .into_par_iter()
            .map(|share| {
                let mut ids = Vec::with_capacity(share.iter().map(|t| t.as_ref().len() / 4).sum());
                let mut ends = Vec::with_capacity(share.len());
                for t in share {
                    self.encode_into(t.as_ref(), &mut ids)?;
                    ends.push(ids.len());
                }
                Ok((ids, ends))
            })
            .collect::<Result<_>>()?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one share"));
        }
        let mut ends = Vec::with_capacity(texts.len());
        let mut ids = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        for (p, e) in parts {
            let base = ids.len();
            ids.extend_from_slice(&p);
            ends.extend(e.into_iter().map(|e| base + e));
        }
        Ok((ids, ends))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_python_and_maps_unknown_words() {
        let words: Vec<String> = ["<unk>", "a", "b"].iter().map(|s| s.to_string()).collect();
        let w = WordIndex::new(&words, Some(0)).unwrap();
        let (ids, ends) = w
            .encode_texts(&["a b\u{3000}zz", "", " b\u{1f}a "])
            .unwrap();
        assert_eq!(ids, [1, 2, 0, 2, 1]);
        assert_eq!(ends, [3, 3, 5]);
        let strict = WordIndex::new(&words, None).unwrap();
        assert!(strict.encode_texts(&["a q"]).is_err());
        assert!(WordIndex::new(&[words[1].clone(), words[1].clone()], None).is_err());
        assert!(WordIndex::new(&words, Some(3)).is_err());
    }

    /// Every word finds its id and back, among many (the table's probing and growth), and
    /// words that are not in it are not found.
    #[test]
    fn finds_every_word() {
        let words: Vec<String> = (0..20_000).map(|i| format!("w{}", i * 7)).collect();
        let w = WordIndex::new(&words, None).unwrap();
        assert_eq!(w.len(), words.len());
        for (i, x) in words.iter().enumerate() {
            assert_eq!(w.get(x), Some(i as u32));
            assert_eq!(w.word(i as u32), x);
        }
        assert_eq!(w.get("w1"), None);
        assert_eq!(w.get(""), None);
        let with_empty = WordIndex::new(&["", "a"], None).unwrap();
        assert_eq!(
            (with_empty.get(""), with_empty.get("a")),
            (Some(0), Some(1))
        );
    }

    /// Words inserted one at a time (the table growing from empty) are found as words given at
    /// once are, each added once; sorted, they are numbered in code point order after `first`.
    #[test]
    fn gathers_words_one_at_a_time() {
        let mut w = WordIndex::new::<&str>(&[], None).unwrap();
        let words: Vec<String> = (0..5_000)
            .map(|i| format!("w{}", (i * 7919) % 5_000))
            .collect();
        for x in &words {
            assert!(w.insert(x).unwrap());
            assert!(!w.insert(x).unwrap());
        }
        assert!(w.insert("\u{e9}").unwrap() && w.insert("z").unwrap());
        assert_eq!(w.len(), 5_002);
        for (i, x) in words.iter().enumerate() {
            assert_eq!(w.get(x), Some(i as u32));
        }
        let s = w.sorted(Some("z")).unwrap();
        let mut want: Vec<&str> = words.iter().map(String::as_str).collect();
        want.push("\u{e9}");
        want.sort_unstable();
        want.insert(0, "z");
        assert_eq!(
            (0..s.len() as u32).map(|i| s.word(i)).collect::<Vec<_>>(),
            want
        );
        assert_eq!((s.get("nope"), s.get("z")), (None, Some(0)));
        assert_eq!(s.sorted(None).unwrap().word(s.len() as u32 - 1), "\u{e9}");
    }
}
