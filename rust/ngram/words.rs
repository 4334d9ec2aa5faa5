//! Word-level vocabularies: tokens are the white-space separated words of a text (Python's
//! `str.split()`), numbered by a table; a word not in it is `<unk>` (or an error without one).

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::parallel::shares;
use crate::tokenize::is_py_space;

#[derive(Clone, Debug, PartialEq)]
pub struct WordIndex {
    ids: FxHashMap<String, u32>,
    unk: Option<u32>,
}

impl WordIndex {
    /// `words[i]` has id `i`; `unk` is the id unknown words take.
    pub fn new(words: &[String], unk: Option<u32>) -> Result<Self> {
        let mut ids = FxHashMap::default();
        ids.reserve(words.len());
        for (i, w) in words.iter().enumerate() {
            if ids.insert(w.clone(), i as u32).is_some() {
                return Err(Error::invalid("vocab", format!("{w:?} appears twice")));
            }
        }
        if let Some(u) = unk {
            if u as usize >= words.len() {
                return Err(Error::invalid("unk", format!("id {u} is out of range")));
            }
        }
        Ok(WordIndex { ids, unk })
    }

    #[inline]
    fn id(&self, word: &str) -> Result<u32> {
        match self.ids.get(word) {
            Some(&id) => Ok(id),
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
    }
}
