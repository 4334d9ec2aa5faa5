//! The add-k (Lidstone) n-gram language model: probabilities, perplexity, per-document scores,
//! sampling.
//!
//! `P(token | context) = (count(context, token) + k) / (count(context) + k * V)` where `V` is the
//! number of ids: the vocabulary (with its unk token) plus BOS and EOS when documents are padded.
//! The unigram model (order 1) has the empty context, whose count is the total token count.
//! Without padding the first `order - 1` tokens of a document are not predicted; with padding a
//! document is `order - 1` BOS, its tokens, `order - 1` EOS (NLTK's `pad_both_ends`).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ngram::NgramCounts;
use crate::tokenize::Vocab;

#[derive(Clone, Debug, PartialEq)]
pub struct NgramModel {
    pub vocab: Vocab,
    pub counts: NgramCounts,
    pub pad: bool,
}

/// Negative log-likelihood summed over a document's predicted tokens, and their number.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub nll: f64,
    pub n: u64,
}

impl Score {
    pub fn perplexity(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            (self.nll / self.n as f64).exp()
        }
    }
}

/// Ids [`NgramModel::count_texts`] collects before counting them in one go (4 MiB per thread).
pub const COUNT_CHUNK: usize = 1 << 20;

pub fn check_k(k: f64) -> Result<()> {
    if !(k > 0.0 && k.is_finite()) {
        return Err(Error::invalid(
            "k",
            format!("must be a positive finite number (e.g. 0.1 or 1.0), got {k}"),
        ));
    }
    Ok(())
}

impl NgramModel {
    /// An empty model of `order` over `vocab`.
    pub fn new(vocab: Vocab, order: usize, pad: bool) -> Result<Self> {
        let id_space = vocab.len() as u32 + if pad { 2 } else { 0 };
        let counts = NgramCounts::new(order, id_space)?;
        Ok(NgramModel { vocab, counts, pad })
    }

    pub fn order(&self) -> usize {
        self.counts.order()
    }

    /// `V`: the number of ids the model predicts over.
    pub fn id_space(&self) -> u32 {
        self.counts.id_space()
    }

    pub fn bos(&self) -> Option<u32> {
        self.pad.then_some(self.vocab.len() as u32)
    }

    pub fn eos(&self) -> Option<u32> {
        self.pad.then_some(self.vocab.len() as u32 + 1)
    }

    /// The id sequence of one document as the model sees it (padded when `pad`).
    fn sequence_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        self.append_sequence(text, out)
    }

    /// Appends the id sequence of one document to `out`.
    fn append_sequence(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let n = self.order() - 1;
        if let Some(bos) = self.bos() {
            out.extend(std::iter::repeat_n(bos, n));
        }
        self.vocab.encode_into(text, out)?;
        if let Some(eos) = self.eos() {
            out.extend(std::iter::repeat_n(eos, n));
        }
        Ok(())
    }

    /// Counts of `texts` (documents) as a separate table, in parallel; [`NgramModel::add_counts`]
    /// merges it in. Where counting in bulk pays ([`NgramCounts::counts_in_bulk`]), each thread
    /// encodes documents into a buffer of about [`COUNT_CHUNK`] ids and counts a full buffer at
    /// once ([`NgramCounts::add_runs`]); elsewhere the buffer holds one document, so it stays in
    /// cache.
    pub fn count_texts<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<NgramCounts> {
        let empty = NgramCounts::new(self.order(), self.id_space())?;
        let chunk = if empty.counts_in_bulk() {
            COUNT_CHUNK
        } else {
            1
        };
        texts
            .par_iter()
            .try_fold(
                || (empty.clone(), Vec::new(), Vec::new()),
                |(mut counts, mut ids, mut ends), t| {
                    self.append_sequence(t.as_ref(), &mut ids)?;
                    ends.push(ids.len());
                    if ids.len() >= chunk {
                        counts.add_runs(&ids, &ends)?;
                        ids.clear();
                        ends.clear();
                    }
                    Ok::<_, Error>((counts, ids, ends))
                },
            )
            .map(|r| {
                r.and_then(|(mut counts, ids, ends)| {
                    counts.add_runs(&ids, &ends)?;
                    Ok(counts)
                })
            })
            .try_reduce(|| empty.clone(), |a, b| a.merged(b))
    }

    /// Counts `texts` into the model.
    pub fn fit<S: AsRef<str> + Sync>(&mut self, texts: &[S]) -> Result<()> {
        let counts = self.count_texts(texts)?;
        let own = std::mem::take(&mut self.counts);
        self.counts = own.merged(counts)?;
        Ok(())
    }

    /// Adds counts made elsewhere (same order and id space).
    pub fn add_counts(&mut self, counts: &NgramCounts) -> Result<()> {
        self.counts.merge(counts)
    }

    /// `ln P(token | context)` for a packed n-gram key.
    #[inline]
    fn log_prob_key(&self, key: u128, k: f64, kv: f64) -> f64 {
        let c = self.counts.count_key(key) as f64;
        let cc = self.counts.context_count_key(key >> self.counts.bits()) as f64;
        ((c + k) / (cc + kv)).ln()
    }

    /// `P(token | context)`; `context` holds the last `order - 1` ids.
    pub fn prob(&self, context: &[u32], token: u32, k: f64) -> Result<f64> {
        check_k(k)?;
        let n = self.order();
        if context.len() != n - 1 {
            return Err(Error::invalid(
                "context",
                format!(
                    "an order-{n} model needs {} context tokens, got {}",
                    n - 1,
                    context.len()
                ),
            ));
        }
        let v = self.id_space();
        if let Some(&bad) = context.iter().chain([&token]).find(|&&id| id >= v) {
            return Err(Error::invalid(
                "token",
                format!("id {bad} is out of range for {v} ids"),
            ));
        }
        let mut gram = context.to_vec();
        gram.push(token);
        Ok(self
            .log_prob_key(self.counts.key(&gram), k, k * v as f64)
            .exp())
    }

    /// Score of an id sequence (already padded when the model pads).
    pub fn score_ids(&self, ids: &[u32], k: f64) -> Score {
        let kv = k * self.id_space() as f64;
        let mut s = Score::default();
        self.counts.for_each_window(ids, |key| {
            s.nll -= self.log_prob_key(key, k, kv);
            s.n += 1;
        });
        s
    }

    /// `ln P` for every packed key, when the key space is small enough to be worth it for
    /// `work` tokens (a bigram model over a few hundred characters): scoring is then one load.
    fn log_prob_table(&self, k: f64, work: usize) -> Option<Vec<f64>> {
        let n = self.counts.key_space()?;
        if n > work {
            return None;
        }
        let kv = k * self.id_space() as f64;
        Some(
            (0..n as u128)
                .map(|key| self.log_prob_key(key, k, kv))
                .collect(),
        )
    }

    /// One score per document, in parallel (each document's sum is sequential, so the result
    /// does not depend on the thread count).
    pub fn score_texts<S: AsRef<str> + Sync>(&self, texts: &[S], k: f64) -> Result<Vec<Score>> {
        check_k(k)?;
        let table = self.log_prob_table(k, texts.iter().map(|t| t.as_ref().len()).sum());
        texts
            .par_iter()
            .map_init(Vec::new, |ids, t| {
                self.sequence_into(t.as_ref(), ids)?;
                Ok(match &table {
                    Some(lp) => {
                        let mut s = Score::default();
                        self.counts.for_each_window(ids, |key| {
                            s.nll -= lp[key as usize];
                            s.n += 1;
                        });
                        s
                    }
                    None => self.score_ids(ids, k),
                })
            })
            .collect()
    }

    /// Perplexity of the corpus: `exp` of the mean NLL over every predicted token of every
    /// document; documents are summed in order.
    pub fn corpus_score<S: AsRef<str> + Sync>(&self, texts: &[S], k: f64) -> Result<Score> {
        let scores = self.score_texts(texts, k)?;
        Ok(scores.iter().fold(Score::default(), |a, s| Score {
            nll: a.nll + s.nll,
            n: a.n + s.n,
        }))
    }

    /// Samples `length` tokens following `start` (ids). Padded models prefix BOS and stop at
    /// EOS; unpadded ones need at least `order - 1` start tokens. The unk token and BOS are never
    /// drawn. `temperature` sharpens (< 1) or flattens (> 1) the distribution.
    pub fn sample(
        &self,
        start: &[u32],
        length: usize,
        k: f64,
        temperature: f64,
        seed: u64,
    ) -> Result<Vec<u32>> {
        check_k(k)?;
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(Error::invalid(
                "temperature",
                format!("must be a positive finite number, got {temperature}"),
            ));
        }
        let n = self.order();
        let mut history: Vec<u32> = Vec::new();
        if let Some(bos) = self.bos() {
            history.extend(std::iter::repeat_n(bos, n - 1));
        }
        history.extend_from_slice(start);
        if history.len() < n - 1 {
            return Err(Error::invalid(
                "start",
                format!(
                    "an unpadded order-{n} model needs at least {} start tokens, got {}",
                    n - 1,
                    start.len()
                ),
            ));
        }
        let v = self.id_space();
        let kv = k * v as f64;
        let candidates: Vec<u32> = (0..v)
            .filter(|&id| Some(id) != self.vocab.unk_id() && Some(id) != self.bos())
            .collect();
        if candidates.is_empty() {
            return Err(Error::invalid(
                "vocab",
                "nothing to sample: the vocabulary has only <unk>",
            ));
        }
        let mut rng = SplitMix64(seed);
        let mut weights = vec![0f64; candidates.len()];
        let mut out = Vec::with_capacity(length);
        let bits = self.counts.bits();
        for _ in 0..length {
            let ctx = self.counts.key(&history[history.len() + 1 - n..]);
            for (w, &id) in weights.iter_mut().zip(&candidates) {
                let lp = self.log_prob_key((ctx << bits) | id as u128, k, kv);
                *w = (lp / temperature).exp();
            }
            let total: f64 = weights.iter().sum();
            let mut r = rng.next_f64() * total;
            let mut pick = candidates[candidates.len() - 1];
            for (w, &id) in weights.iter().zip(&candidates) {
                if r < *w {
                    pick = id;
                    break;
                }
                r -= w;
            }
            if Some(pick) == self.eos() {
                break;
            }
            out.push(pick);
            history.push(pick);
        }
        Ok(out)
    }
}

/// A small, fast, seeded generator (SplitMix64); the same seed gives the same samples everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Tokenizer;

    fn model(order: usize, pad: bool) -> NgramModel {
        let train = vec!["abab".to_string(), "ba".to_string()];
        let vocab = Vocab::from_texts(&train, Some("<unk>"), Tokenizer::default()).unwrap();
        let mut m = NgramModel::new(vocab, order, pad).unwrap();
        m.fit(&train).unwrap();
        m
    }

    #[test]
    fn addk_probabilities_sum_to_one() {
        let m = model(2, false);
        for ctx in 0..3u32 {
            let s: f64 = (0..3u32).map(|t| m.prob(&[ctx], t, 0.1).unwrap()).sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        // a->b seen twice; count(a as context) = 2; V = 3
        assert!((m.prob(&[1], 2, 0.1).unwrap() - 2.1 / 2.3).abs() < 1e-15);
    }

    #[test]
    fn perplexity_by_hand() {
        let m = model(1, false);
        // unigram counts: a=3, b=3, total 6, V=3
        let s = m.corpus_score(&["az".to_string()], 1.0).unwrap();
        let want = (-((4.0f64 / 9.0).ln() + (1.0f64 / 9.0).ln()) / 2.0).exp();
        assert!((s.perplexity() - want).abs() < 1e-12);
        assert!(m.corpus_score(&["a"], 0.0).is_err());
    }

    #[test]
    fn padded_model_predicts_eos() {
        let m = model(3, true);
        assert_eq!(m.id_space(), 5);
        let s = m.score_texts(&["a".to_string()], 0.5).unwrap();
        assert_eq!(s[0].n, 3); // a, EOS, EOS
        let unpadded = model(3, false)
            .score_texts(&["a".to_string()], 0.5)
            .unwrap();
        assert_eq!(unpadded[0].n, 0);
        assert!(unpadded[0].perplexity().is_nan());
    }

    #[test]
    fn sampling_is_seeded() {
        let m = model(2, false);
        let a = m.sample(&[1], 20, 0.1, 1.0, 7).unwrap();
        assert_eq!(a, m.sample(&[1], 20, 0.1, 1.0, 7).unwrap());
        assert_eq!(a.len(), 20);
        assert!(a.iter().all(|&id| id != 0));
        assert!(m.sample(&[], 5, 0.1, 1.0, 7).is_err());
        assert!(m.sample(&[1], 5, 0.1, 0.0, 7).is_err());
    }
}
