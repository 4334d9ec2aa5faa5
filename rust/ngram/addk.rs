//! The add-k (Lidstone) n-gram language model: probabilities, perplexity, per-document scores,
//! sampling.
//!
//! `P(token | context) = (count(context, token) + k) / (count(context) + k * V)` where `V` is the
//! number of ids: the vocabulary (with its unk token) plus BOS and EOS when documents are padded
//! (an order-1 model pads nothing: it has no context, as NLTK's `pad_both_ends(n=1)`).
//! The unigram model (order 1) has the empty context, whose count is the total token count.
//! Without padding the first `order - 1` tokens of a document are not predicted; with padding a
//! document is `order - 1` BOS, its tokens, `order - 1` EOS (NLTK's `pad_both_ends`).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ngram::counts::NgramCounts;
use crate::parallel::shares;
use crate::tokenize::{FirstSeen, Tokenizer, Vocab};

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

/// Counts one share of documents: `encode` appends a document's ids (padded) to a buffer and
/// returns the number of ids that may occur so far. The buffer collects about [`COUNT_CHUNK`]
/// ids, and a full buffer is counted at once ([`NgramCounts::add_runs`]) into `counts` widened
/// to the ids met so far (`None`: made at the first full buffer). The one exception is counts
/// given up front that are not counted in bulk ([`NgramCounts::counts_in_bulk`]: hashed keys
/// of an order above 2): there each document is counted at once, which keeps its ids in cache.
/// The last buffer and where its documents end are returned uncounted.
fn count_share<S: AsRef<str>>(
    share: &[S],
    order: usize,
    mut counts: Option<NgramCounts>,
    mut encode: impl FnMut(&str, &mut Vec<u32>) -> Result<u32>,
) -> Result<(Option<NgramCounts>, Vec<u32>, Vec<usize>)> {
    let chunk = match &counts {
        Some(c) if !c.counts_in_bulk() => 1,
        _ => COUNT_CHUNK,
    };
    // room for the ids of a full buffer and of the document that fills it (at most one id per
    // byte, plus padding), so that the buffer never moves: copying it would touch fresh pages
    let most = |t: &S| t.as_ref().len() + 2 * (order - 1);
    let total: usize = share.iter().map(most).sum();
    let longest = share.iter().map(most).max().unwrap_or(0);
    let (mut ids, mut ends) = (Vec::with_capacity(total.min(chunk + longest)), Vec::new());
    for t in share {
        let space = encode(t.as_ref(), &mut ids)?;
        ends.push(ids.len());
        if ids.len() >= chunk {
            let wide = widened(counts.take(), order, space)?;
            counts.insert(wide).add_runs(&ids, &ends)?;
            ids.clear();
            ends.clear();
        }
    }
    Ok((counts, ids, ends))
}

/// `counts` (`None`: none yet) over an id space of at least `id_space` ids: widened to the
/// next power of two when it has fewer, so the keys are repacked only when they need a bit more.
fn widened(counts: Option<NgramCounts>, order: usize, id_space: u32) -> Result<NgramCounts> {
    let space = id_space
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(u32::MAX);
    match counts {
        Some(c) if c.id_space() >= id_space => Ok(c),
        // (an order too high for the ids is reported with their number, not the power of two)
        Some(c) => c
            .remapped(space, |id| id)
            .or_else(|_| c.remapped(id_space, |id| id)),
        None => NgramCounts::new(order, space).or_else(|_| NgramCounts::new(order, id_space)),
    }
}

/// A document's likelihood, the product of the probabilities of its tokens, kept as
/// `mantissa * other * 2^exponent` so that it never underflows: its logarithm then takes two
/// `ln` per document instead of one per token. Factors go to the two mantissas in turn (two
/// chains of multiplications, each half as long, which the processor overlaps). A mantissa is
/// brought back to [1, 2) whenever it falls below 2^-600. A probability below 2^-400 (possible
/// only with a tiny `k`) goes into `logs` as its logarithm instead, so the products stay clear
/// of subnormal numbers and keep full precision (each factor adds at most an ulp of relative
/// error: about 1e-11 over 10^5 tokens).
#[derive(Clone, Copy, Debug)]
struct Likelihood {
    mantissa: f64,
    other: f64,
    exponent: i64,
    logs: f64,
}

impl Likelihood {
    const ONE: Likelihood = Likelihood {
        mantissa: 1.0,
        other: 1.0,
        exponent: 0,
        logs: 0.0,
    };
    /// 2^-600 and 2^-400
    const LOW: f64 = f64::from_bits((1023 - 600) << 52);
    const TINY: f64 = f64::from_bits((1023 - 400) << 52);

    /// Multiplies by the probability `num / den`.
    #[inline(always)]
    fn times(&mut self, num: f64, den: f64) {
        let p = num / den;
        if p >= Self::TINY {
            let m = self.other * p;
            self.other = self.mantissa;
            self.mantissa = m;
            if m < Self::LOW {
                let bits = m.to_bits();
                self.exponent += (bits >> 52) as i64 - 1023;
                self.mantissa = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
            }
        } else {
            self.logs += num.ln() - den.ln();
        }
    }

    fn ln(&self) -> f64 {
        self.mantissa.ln()
            + self.other.ln()
            + self.exponent as f64 * std::f64::consts::LN_2
            + self.logs
    }
}

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
        // an order-1 model has no context to pad (NLTK's `pad_both_ends(n=1)` adds nothing)
        let pad = pad && order > 1;
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
    /// merges it in. Each thread counts one share of the texts ([`count_share`]).
    pub fn count_texts<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<NgramCounts> {
        let empty = NgramCounts::new(self.order(), self.id_space())?;
        let space = self.id_space();
        shares(texts, |t| t.as_ref().len())
            .into_par_iter()
            .map(|share| {
                let (counts, ids, ends) =
                    count_share(share, self.order(), Some(empty.clone()), |t, ids| {
                        self.append_sequence(t, ids).map(|_| space)
                    })?;
                let mut counts = counts.unwrap_or_else(|| empty.clone());
                counts.add_runs(&ids, &ends)?;
                Ok(counts)
            })
            .try_reduce(|| empty.clone(), |a, b| a.merged(b))
    }

    /// A model over the vocabulary of `texts`, fitted on them: the same as
    /// [`Vocab::from_texts`] then [`NgramModel::fit`], but the texts are tokenized once, not
    /// twice. Each thread numbers the tokens of its share in the order it meets them
    /// ([`FirstSeen`]) and counts in those ids; at the end the vocabulary is built from every
    /// token met and the counts are renumbered to its ids.
    pub fn from_texts<S: AsRef<str> + Sync>(
        texts: &[S],
        unk: Option<&str>,
        tokenizer: Tokenizer,
        order: usize,
        pad: bool,
    ) -> Result<Self> {
        // a bad order is reported before the work
        NgramCounts::new(order, 1)?;
        let pad = pad && order > 1;
        // with padding, ids 0 and 1 are BOS and EOS until renumbered
        let pads = if pad { order - 1 } else { 0 };
        type Part = (FirstSeen, Option<NgramCounts>, Vec<u32>, Vec<usize>);
        let parts: Vec<Part> = shares(texts, |t| t.as_ref().len())
            .into_par_iter()
            .map(|share| {
                let mut seen = FirstSeen::new(tokenizer.clone(), if pad { 2 } else { 0 });
                let (counts, ids, ends) = count_share(share, order, None, |t, ids| {
                    ids.extend(std::iter::repeat_n(0, pads));
                    seen.encode_into(t, ids);
                    ids.extend(std::iter::repeat_n(1, pads));
                    Ok(seen.id_space())
                })?;
                Ok((seen, counts, ids, ends))
            })
            .collect::<Result<_>>()?;
        let vocab = FirstSeen::vocab(parts.iter().map(|p| &p.0), unk, tokenizer)?;
        let mut model = NgramModel::new(vocab, order, pad)?;
        let specials: Vec<u32> = model.bos().into_iter().chain(model.eos()).collect();
        for (seen, counts, ids, ends) in parts {
            let mut map = specials.clone();
            map.extend(seen.id_map(&model.vocab)?);
            if let Some(counts) = counts {
                let rename = |id: u32| map.get(id as usize).copied().unwrap_or(u32::MAX);
                let counts = counts.remapped(model.id_space(), rename)?;
                model.counts = std::mem::take(&mut model.counts).merged(counts)?;
            }
            model.counts.add_runs_renamed(&ids, &ends, &map)?;
        }
        Ok(model)
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
        self.score_with(ids, k, None)
    }

    /// `P(token | context)` for every packed key, when the key space is no larger than the
    /// `work` of the call (a bigram model over a few hundred characters): a token then costs one
    /// load. (Not for a `k` so small that a probability could fall below the normal numbers.)
    fn prob_table(&self, k: f64, work: usize) -> Option<Vec<f64>> {
        if k < 1e-200 {
            return None;
        }
        let n = self.counts.key_space().filter(|&n| n <= work)?;
        let kv = k * self.id_space() as f64;
        let bits = self.counts.bits();
        Some(
            (0..n as u128)
                .map(|key| {
                    let cc = self.counts.context_count_key(key >> bits) as f64;
                    (self.counts.count_key(key) as f64 + k) / (cc + kv)
                })
                .collect(),
        )
    }

    /// [`NgramModel::score_ids`] with the probabilities from `table` ([`NgramModel::prob_table`])
    /// when there is one, else from the counts.
    fn score_with(&self, ids: &[u32], k: f64, table: Option<&[f64]>) -> Score {
        let (mut likelihood, mut n) = (Likelihood::ONE, 0);
        match table {
            Some(p) => self.counts.for_each_window(ids, |key| {
                likelihood.times(p[key as usize], 1.0);
                n += 1;
            }),
            None => {
                let kv = k * self.id_space() as f64;
                self.counts.for_each_count(ids, |c, cc| {
                    likelihood.times(c as f64 + k, cc as f64 + kv);
                    n += 1;
                })
            }
        }
        Score {
            nll: -likelihood.ln(),
            n,
        }
    }

    /// One score per document, in parallel (each document's sum is sequential, so the result
    /// does not depend on the thread count).
    pub fn score_texts<S: AsRef<str> + Sync>(&self, texts: &[S], k: f64) -> Result<Vec<Score>> {
        check_k(k)?;
        let work = texts.iter().map(|t| t.as_ref().len()).sum();
        let table = self.prob_table(k, work);
        texts
            .par_iter()
            .map_init(Vec::new, |ids, t| {
                self.sequence_into(t.as_ref(), ids)?;
                Ok(self.score_with(ids, k, table.as_deref()))
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
        let mut out = crate::memory::reserved(
            "length",
            || format!("{length} sampled tokens"),
            Some(length),
        )?;
        let bits = self.counts.bits();
        for _ in 0..length {
            let ctx = self.counts.key(&history[history.len() + 1 - n..]);
            for (w, &id) in weights.iter_mut().zip(&candidates) {
                let lp = self.log_prob_key((ctx << bits) | id as u128, k, kv);
                *w = (lp / temperature).exp();
            }
            let total: f64 = weights.iter().sum();
            let pick = rng.pick(&weights, &candidates, total);
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
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// One of `candidates`, drawn with probability proportional to its weight (`total` is the
    /// weights' sum); the last one when rounding leaves the draw past them all.
    pub(crate) fn pick(&mut self, weights: &[f64], candidates: &[u32], total: f64) -> u32 {
        let mut r = self.next_f64() * total;
        for (w, &id) in weights.iter().zip(candidates) {
            if r < *w {
                return id;
            }
            r -= w;
        }
        candidates[candidates.len() - 1]
    }

    pub(crate) fn next_f64(&mut self) -> f64 {
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
    fn one_pass_fit_equals_vocabulary_then_fit() {
        // mixed scripts, characters the tables leave to the slow path (İ lowercases to two, Σ
        // to a form that depends on its neighbours, a character of another plane), a character
        // equal to the unk token, empty and one-token documents; vocabularies from 4 to
        // thousands of ids, so the first-seen counts widen from dense to hashed tables
        let mut texts: Vec<String> = vec![
            "İstanbul ΟΔΟΣ, Σα".into(),
            "".into(),
            "x".into(),
            "日本語の文章と English words。😀".into(),
            "#".into(),
        ];
        texts.extend((0..300u32).map(|i| {
            (0..40u32)
                .filter_map(|j| char::from_u32(0x4E00 + (i * 7 + j * 13) % 3000))
                .chain("かな abc".chars())
                .collect()
        }));
        let ja = Tokenizer {
            punctuation: crate::tokenize::CharSet::new(crate::tokenize::JA_PUNCTUATION),
            ..Tokenizer::default()
        };
        let nfkc = Tokenizer {
            nfkc: true,
            ..Tokenizer::default()
        };
        for tok in [Tokenizer::default(), Tokenizer::raw(), ja, nfkc] {
            for (order, pad) in [(1, false), (2, false), (2, true), (3, true)] {
                for (unk, n) in [
                    (Some("<unk>"), 4),
                    (Some("#"), 3),
                    (None, 4),
                    (None, 1),
                    (Some("<unk>"), 1),
                ] {
                    for texts in [&texts[..5], &texts[..]] {
                        let vocab = Vocab::from_texts(texts, unk, tok.clone()).unwrap();
                        let mut want = NgramModel::new(vocab, order, pad).unwrap();
                        want.fit(texts).unwrap();
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(n)
                            .build()
                            .unwrap();
                        let got = pool
                            .install(|| NgramModel::from_texts(texts, unk, tok.clone(), order, pad))
                            .unwrap();
                        assert_eq!(got, want, "{tok:?} order {order} pad {pad} unk {unk:?}");
                        assert_eq!(got.counts.total(), want.counts.total());
                    }
                }
            }
        }
        // the same errors as the two steps
        assert!(NgramModel::from_texts(&["ab"], None, Tokenizer::default(), 0, false).is_err());
        assert!(NgramModel::from_texts(&[""], None, Tokenizer::default(), 2, false).is_err());
    }

    #[test]
    fn one_pass_fit_counts_full_buffers_before_the_vocabulary_is_known() {
        // more than COUNT_CHUNK ids over more than 512 distinct characters: full buffers are
        // counted in first-seen ids and renumbered, the last one (large enough to be counted in
        // bulk) renamed as it is counted, after the vocabulary is built
        let texts: Vec<String> = (0..35u32)
            .map(|d| {
                (0..40_000u32)
                    .filter_map(|j| char::from_u32(0x4E00 + (d * 31 + j * j % 997) % 1500))
                    .collect()
            })
            .collect();
        assert!(texts.iter().map(|t| t.chars().count()).sum::<usize>() > COUNT_CHUNK);
        let tok = Tokenizer::default();
        let vocab = Vocab::from_texts(&texts, Some("<unk>"), tok.clone()).unwrap();
        let mut want = NgramModel::new(vocab, 2, false).unwrap();
        want.fit(&texts).unwrap();
        // one thread, one share: its buffer fills before the end
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let got = pool
            .install(|| NgramModel::from_texts(&texts, Some("<unk>"), tok, 2, false))
            .unwrap();
        assert!(got.counts.counts_in_bulk());
        assert_eq!(got, want);
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
    fn long_documents_and_tiny_k_score_as_a_sum_of_logarithms() {
        // products of the probabilities would underflow many times over; with a tiny k an
        // unseen bigram's probability is itself far below the normal numbers
        let m = model(2, false);
        let doc: String = "abba".repeat(5000) + "bbbb";
        let ids = m.vocab.encode(&doc).unwrap();
        for k in [0.1, 1.0, 1e-3, 1e-250, 1e-310] {
            let kv = k * m.id_space() as f64;
            let mut want = 0.0;
            for w in ids.windows(2) {
                let c = m.counts.count(w) as f64;
                let cc = m.counts.context_count(&w[..1]) as f64;
                want -= (c + k).ln() - (cc + kv).ln();
            }
            for got in [m.score_ids(&ids, k), m.score_texts(&[&doc], k).unwrap()[0]] {
                assert_eq!(got.n, ids.len() as u64 - 1);
                assert!(got.nll.is_finite(), "k={k}");
                assert!(
                    (got.nll - want).abs() <= 1e-12 * want.abs(),
                    "k={k}: {} vs {want}",
                    got.nll
                );
            }
        }
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
