//! From signatures to a deduplicated corpus: the settings ([`Config`]), signing, the two
//! clustering rules, and the persistent [`Index`] that dedups shard after shard.
//!
//! The pipeline: signatures ([`Config::sign`], chunk by chunk) → band keys and a digest of the
//! bytes per document (the only per-document state kept) → a decision per document:
//! - [`Cluster::Greedy`] (the default, see [`crate::greedy`]): in decision order, a document is
//!   removed iff an earlier kept document sharing a bucket is within the threshold. Linear cost,
//!   no chains; the same decisions from a one-shot [`Run`], an [`Index`] fed in batches, and any
//!   partition into candidate components.
//! - [`Cluster::Components`]: connected components of the verified candidate pairs (what
//!   text-dedup and datatrove do); one document kept per component. Exact copies are joined by
//!   digest, and a pair already connected is not verified. Chains join documents far below the
//!   threshold: `similarity` (to the kept document) can be lower than the threshold.
//!
//! Documents are numbered globally by input position; in an [`Index`] the documents added before
//! come first.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::greedy::{feature, similarity, DocRef, Feature, Greedy, Texts, MAX_DOCS};
use crate::lsh;
use crate::minhash::{MinHasher, Scheme, Worker};
use crate::reader::Lines;
use crate::shingle::{hash64, Normalize, Scratch, ShingleKind, Shingler};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Exact Jaccard over the shingle sets (64-bit hashes of the shingles).
    Exact,
    /// The signature estimate (fraction of equal MinHash values).
    Minhash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The first document of a cluster (smallest number) is kept.
    First,
    /// The longest (most characters; ties: the first) is kept.
    Longest,
}

impl Verify {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(Verify::Exact),
            "minhash" => Ok(Verify::Minhash),
            other => Err(Error::invalid(
                "verify",
                format!("expected 'exact' or 'minhash', got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verify::Exact => "exact",
            Verify::Minhash => "minhash",
        }
    }
}

impl Keep {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "first" => Ok(Keep::First),
            "longest" => Ok(Keep::Longest),
            other => Err(Error::invalid(
                "keep",
                format!("expected 'first' or 'longest', got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Keep::First => "first",
            Keep::Longest => "longest",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// Greedy against kept representatives (no chains; see [`crate::greedy`]).
    Greedy,
    /// Connected components of the verified pairs.
    Components,
}

impl Cluster {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "greedy" => Ok(Cluster::Greedy),
            "components" => Ok(Cluster::Components),
            other => Err(Error::invalid(
                "cluster",
                format!("expected 'greedy' or 'components', got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cluster::Greedy => "greedy",
            Cluster::Components => "components",
        }
    }
}

/// The minimum probability that a pair at the threshold becomes a candidate, for the default
/// choice of bands and rows.
pub const MIN_RECALL: f64 = 0.99;

/// Everything that decides the result of a dedup.
#[derive(Clone, Debug)]
pub struct Config {
    pub threshold: f64,
    pub hasher: MinHasher,
    pub bands: usize,
    pub rows: usize,
    pub verify: Verify,
    pub keep: Keep,
    pub cluster: Cluster,
}

impl Config {
    /// Validates the settings once: every later step takes them as they are.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        threshold: f64,
        num_perm: usize,
        seed: u64,
        scheme: Scheme,
        shingler: Shingler,
        bands: Option<usize>,
        rows: Option<usize>,
        verify: Verify,
        keep: Keep,
        cluster: Cluster,
    ) -> Result<Self> {
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::invalid(
                "threshold",
                format!("expected 0 < threshold <= 1, got {threshold}"),
            ));
        }
        let hasher = MinHasher::new(num_perm, seed, scheme, shingler)?;
        let (bands, rows) = if bands.is_none() && rows.is_none() {
            lsh::recall_params(threshold, num_perm, MIN_RECALL)?
        } else {
            lsh::explicit_params(bands, rows, num_perm)?
        };
        Ok(Config {
            threshold,
            hasher,
            bands,
            rows,
            verify,
            keep,
            cluster,
        })
    }

    pub fn num_perm(&self) -> usize {
        self.hasher.num_perm
    }

    /// Band keys, digests, emptiness and lengths of a batch, in parallel (same bits for any
    /// thread count). Signatures are not kept: only their band keys are needed. A text equal to
    /// an earlier one of the batch is not signed again ([`Config::sign_after`]).
    pub fn sign<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Signed {
        self.sign_after(texts, None::<(&[S], &Signed)>)
    }

    /// [`Config::sign`] of texts that come after `before` (earlier texts and what signing them
    /// gave): a text equal to an earlier one, of `before` or of `texts`, takes that one's band
    /// keys and facts instead of being signed (equal texts have equal signatures), so an exact
    /// copy costs its digest and a comparison. Equal digests are compared as texts; the first
    /// text of each digest is the one copied.
    pub fn sign_after<S: AsRef<str> + Sync, T: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        before: Option<(&[T], &Signed)>,
    ) -> Signed {
        self.sign_with(texts, before, false)
    }

    /// [`Config::sign`], with each text's [`crate::sketch`] where the verification is exact
    /// and the scheme native (what an index keeps beside its texts).
    pub fn sign_sketched<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Signed {
        let sketch = self.verify == Verify::Exact;
        self.sign_with(texts, None::<(&[S], &Signed)>, sketch)
    }

    fn sign_with<S: AsRef<str> + Sync, T: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        before: Option<(&[T], &Signed)>,
        sketch: bool,
    ) -> Signed {
        let (p, b, r) = (self.num_perm(), self.bands, self.rows);
        let n = texts.len();
        let digests: Vec<u64> = texts
            .par_iter()
            .with_min_len(64)
            .map(|t| hash64(t.as_ref().as_bytes()))
            .collect();
        let source = copies(texts, &digests, before);
        let mut keys = vec![0u64; n * b];
        let facts: Vec<(bool, usize, u32, Vec<u64>)> = keys
            .par_chunks_mut(b.max(1))
            .zip(texts.par_iter())
            .zip(&source)
            .with_min_len(8)
            .map_init(
                || (Worker::default(), vec![0u32; p]),
                |(w, sig), ((row, t), src)| {
                    let mut bm = Vec::new();
                    if src.is_some() {
                        return (false, 0, 0, bm); // a copy: filled in below
                    }
                    let t = t.as_ref();
                    let n = if sketch {
                        w.signature_sketched(&self.hasher, t, sig, &mut bm)
                    } else {
                        w.signature(&self.hasher, t, sig)
                    };
                    for (bi, key) in row.iter_mut().enumerate() {
                        *key = lsh::band_key(&sig[bi * r..(bi + 1) * r]);
                    }
                    // lengths are read only to keep the longest (a pass over the text)
                    let len = if self.keep == Keep::Longest {
                        t.chars().count()
                    } else {
                        0
                    };
                    (n == 0, len, u32::try_from(n).unwrap_or(u32::MAX), bm)
                },
            )
            .collect();
        let mut signed = Signed {
            bands: b,
            keys,
            empty: facts.iter().map(|f| f.0).collect(),
            lengths: facts.iter().map(|f| f.1).collect(),
            digests,
            shingles: facts.iter().map(|f| f.2).collect(),
            ..Default::default()
        };
        if sketch {
            // a copy's sketch is its source's
            signed.sketch_at.reserve(n + 1);
            signed.sketch_at.push(0);
            for (i, src) in source.iter().enumerate() {
                let bm = match *src {
                    None => &facts[i].3[..],
                    Some(Source::Before(j)) => before.map_or(&[][..], |(_, s)| s.sketch(j)),
                    Some(Source::Here(j)) => &facts[j].3[..],
                };
                signed.sketches.extend_from_slice(bm);
                signed.sketch_at.push(signed.sketches.len() as u64);
            }
        }
        // in order: a copy's source is before it, signed or a copy filled in already
        for (i, src) in source.iter().enumerate() {
            let (empty, len, shingles) = match *src {
                None => continue,
                Some(Source::Before(j)) => {
                    let from = before.expect("a source before").1;
                    signed.keys[i * b..(i + 1) * b].copy_from_slice(from.keys_of(j));
                    (from.empty[j], from.lengths[j], from.shingles[j])
                }
                Some(Source::Here(j)) => {
                    signed.keys.copy_within(j * b..(j + 1) * b, i * b);
                    (signed.empty[j], signed.lengths[j], signed.shingles[j])
                }
            };
            signed.empty[i] = empty;
            signed.lengths[i] = len;
            signed.shingles[i] = shingles;
        }
        signed
    }

    /// The order in which documents `0..lengths.len()` are decided: input order, or longest
    /// first (ties in input order).
    pub fn decision_order(&self, lengths: &[usize]) -> Vec<u32> {
        let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
        if self.keep == Keep::Longest {
            order.sort_by_key(|&d| (std::cmp::Reverse(lengths[d as usize]), d));
        }
        order
    }
}

/// Where a text's band keys come from when it is a copy of an earlier text.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The text of this number in the texts signed before.
    Before(usize),
    /// An earlier text of the same batch.
    Here(usize),
}

/// For each of `texts`, the first earlier text (of `before`, then of `texts`) with its digest,
/// when it is the same text; None for the rest (signed).
fn copies<S: AsRef<str>, T: AsRef<str>>(
    texts: &[S],
    digests: &[u64],
    before: Option<(&[T], &Signed)>,
) -> Vec<Option<Source>> {
    let prior = before.map_or(0, |(_, s)| s.digests.len());
    let mut first: FxHashMap<u64, Source> =
        FxHashMap::with_capacity_and_hasher(prior + texts.len(), Default::default());
    if let Some((_, s)) = before {
        for (j, &d) in s.digests.iter().enumerate() {
            first.entry(d).or_insert(Source::Before(j));
        }
    }
    let mut out = Vec::with_capacity(texts.len());
    for (i, (t, &d)) in texts.iter().zip(digests).enumerate() {
        let src = *first.entry(d).or_insert(Source::Here(i));
        let same = match src {
            Source::Here(j) if j == i => false,
            Source::Here(j) => texts[j].as_ref() == t.as_ref(),
            Source::Before(j) => before.is_some_and(|(bt, _)| bt[j].as_ref() == t.as_ref()),
        };
        out.push(same.then_some(src));
    }
    out
}

/// The fixed-size state of a batch of documents: `bands` band keys each (row-major), which have
/// no shingles, lengths in characters (with `keep="longest"`, else 0), `hash64` digests of the
/// UTF-8 bytes, and how many shingles each has, repeats counted (so at least as many as its
/// distinct shingles; `u32::MAX` when that does not fit).
#[derive(Clone, Debug, Default)]
pub struct Signed {
    pub bands: usize,
    pub keys: Vec<u64>,
    pub empty: Vec<bool>,
    pub lengths: Vec<usize>,
    pub digests: Vec<u64>,
    pub shingles: Vec<u32>,
    /// The documents' [`crate::sketch`]es one after another, and where each starts (`n + 1`
    /// offsets; none at all when not sketched, [`Config::sign_sketched`]).
    pub sketches: Vec<u64>,
    pub sketch_at: Vec<u64>,
}

impl Signed {
    pub fn len(&self) -> usize {
        self.empty.len()
    }

    pub fn is_empty(&self) -> bool {
        self.empty.is_empty()
    }

    pub fn append(&mut self, mut other: Signed) {
        let (before, more) = (self.empty.len(), other.empty.len());
        self.bands = other.bands;
        self.keys.append(&mut other.keys);
        self.empty.append(&mut other.empty);
        self.lengths.append(&mut other.lengths);
        self.digests.append(&mut other.digests);
        self.shingles.append(&mut other.shingles);
        if self.sketch_at.is_empty() && other.sketch_at.is_empty() {
            return;
        }
        if self.sketch_at.is_empty() {
            self.sketch_at = vec![0; before + 1];
        }
        let end = self.sketch_at.last().copied().unwrap_or(0);
        if other.sketch_at.is_empty() {
            self.sketch_at.extend(std::iter::repeat_n(end, more));
        } else {
            self.sketch_at
                .extend(other.sketch_at[1..].iter().map(|&o| end + o));
            self.sketches.append(&mut other.sketches);
        }
    }

    /// Document `d`'s sketch (empty when it has none).
    pub fn sketch(&self, d: usize) -> &[u64] {
        match (self.sketch_at.get(d), self.sketch_at.get(d + 1)) {
            (Some(&a), Some(&b)) => self.sketches.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn keys_of(&self, d: usize) -> &[u64] {
        &self.keys[d * self.bands..(d + 1) * self.bands]
    }

    /// Document `d` (local position) as a [`DocRef`] numbered `first + d`.
    pub fn doc<'a>(&'a self, texts: &'a [impl AsRef<str>], first: u32, d: usize) -> DocRef<'a> {
        DocRef {
            doc: first + d as u32,
            keys: self.keys_of(d),
            digest: self.digests[d],
            empty: self.empty[d],
            text: texts[d].as_ref(),
        }
    }

    /// Every document, in position order, numbered from `first`.
    pub fn refs<'a>(&'a self, texts: &'a [impl AsRef<str>], first: u32) -> Vec<DocRef<'a>> {
        (0..self.len()).map(|d| self.doc(texts, first, d)).collect()
    }
}

/// Union-find whose roots are the smallest member of their component.
#[derive(Clone, Debug, Default)]
pub struct UnionFind {
    pub parent: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }

    pub fn grow(&mut self, n: usize) {
        let start = self.parent.len() as u32;
        self.parent.extend(start..n as u32);
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }

    /// A parent array is valid if every parent is not after its child (so roots are minima).
    pub fn from_parents(parent: Vec<u32>) -> Result<Self> {
        if parent.iter().enumerate().any(|(i, &p)| p as usize > i) {
            return Err(Error::Corrupt("union-find parent after its child".into()));
        }
        Ok(UnionFind { parent })
    }
}

/// Connected components of an edge list over arbitrary document numbers: `(nodes, roots)`, the
/// sorted distinct numbers and, for each, the smallest number of its component (the root the
/// union-find gives, whatever the edge order).
pub fn components_of_edges(i: &[u64], j: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
    if i.len() != j.len() {
        return Err(Error::invalid(
            "j",
            format!("{} first ends but {} second ends", i.len(), j.len()),
        ));
    }
    let mut nodes: Vec<u64> = i.iter().chain(j).copied().collect();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.len() > u32::MAX as usize {
        return Err(Error::invalid("i", "more than 2^32 distinct documents"));
    }
    let local = |x: u64| nodes.binary_search(&x).unwrap_or(0) as u32;
    let mut uf = UnionFind::new(nodes.len());
    for (&x, &y) in i.iter().zip(j) {
        uf.union(local(x), local(y));
    }
    let roots = (0..nodes.len() as u32)
        .map(|x| nodes[uf.find(x) as usize])
        .collect();
    Ok((nodes, roots))
}

/// One verified pair, `i < j` (global numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub i: u32,
    pub j: u32,
    pub jaccard: f64,
}

/// The result for one batch (arrays indexed by position in the batch; numbers are global).
#[derive(Clone, Debug, Default)]
pub struct DedupOutput {
    pub first_doc: usize,
    pub keep: Vec<bool>,
    /// The kept document each document belongs to (itself when kept).
    pub cluster: Vec<i64>,
    /// The kept document a removed one duplicates (-1 when kept).
    pub duplicate_of: Vec<i64>,
    /// Similarity to `duplicate_of` (NaN when kept).
    pub similarity: Vec<f64>,
    /// Kept documents (greedy) or candidate pairs (components) each document was verified with.
    pub examined: Vec<u32>,
    /// Every verified pair at or above the threshold: only when asked (`all_pairs`).
    pub pairs: Vec<Pair>,
    /// Bytes of text the run stored, and whether they went to a temporary file.
    pub stored_bytes: u64,
    pub spilled: bool,
    pub empty: Vec<bool>,
    /// Similarities computed.
    pub n_candidates: usize,
    pub n_clusters: usize,
    pub seconds: Vec<(&'static str, f64)>,
}

impl DedupOutput {
    fn from_decisions(first: usize, decisions: &[Decision], empty: Vec<bool>) -> Self {
        let mut out = DedupOutput {
            first_doc: first,
            empty,
            ..Default::default()
        };
        out.push(decisions);
        out.close();
        out
    }

    /// Appends the decisions of the next documents (numbered from `first_doc + len`); `keep` and
    /// `cluster` are made from them by [`DedupOutput::close`], so a long run holds 20 bytes a
    /// document until it finishes.
    fn push(&mut self, decisions: &[Decision]) {
        for d in decisions {
            self.duplicate_of.push(d.duplicate_of.map_or(-1, i64::from));
            self.similarity.push(d.similarity);
            self.examined.push(d.examined);
        }
    }

    /// `keep`, `cluster` and the counts, once every decision is in.
    fn close(&mut self) {
        let first = self.first_doc as i64;
        self.keep = self.duplicate_of.iter().map(|&d| d < 0).collect();
        self.cluster = (self.duplicate_of.iter().enumerate())
            .map(|(pos, &d)| if d < 0 { first + pos as i64 } else { d })
            .collect();
        self.n_candidates = self.examined.iter().map(|&e| e as usize).sum();
        self.n_clusters = self.keep.iter().filter(|&&k| k).count();
    }
}

use crate::greedy::Decision;
use crate::store::Store;

/// Feed the greedy decider this many documents at a time.
const CHUNK: usize = 8192;

/// A batch's texts seen as global numbers `first..`.
struct Batch<'a, S> {
    texts: &'a [S],
    first: u32,
}

impl<S: AsRef<str> + Sync> Texts for Batch<'_, S> {
    fn text(&self, doc: u32) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.texts[(doc - self.first) as usize].as_ref())
    }
}

/// Greedy decisions for a batch numbered `first..`, after everything `greedy` holds. With a
/// `store`, kept texts go into it chunk by chunk (earlier kept documents are read from it);
/// without, every earlier document must be in the batch.
fn decide_batch<S: AsRef<str> + Sync>(
    cfg: &Config,
    greedy: &mut Greedy,
    signed: &Signed,
    batch: &[S],
    first: u32,
    mut store: Option<&mut Store>,
) -> Result<Vec<Decision>> {
    let undecided = Decision {
        duplicate_of: None,
        similarity: f64::NAN,
        examined: 0,
    };
    let mut out = vec![undecided; batch.len()];
    if let Some(s) = store.as_deref_mut() {
        s.grow(first as usize + batch.len());
    }
    for part in cfg.decision_order(&signed.lengths).chunks(CHUNK) {
        let refs: Vec<DocRef<'_>> = part
            .iter()
            .map(|&d| signed.doc(batch, first, d as usize))
            .collect();
        let decided = match store.as_deref() {
            Some(s) => greedy.decide(cfg, &refs, s),
            None => greedy.decide(
                cfg,
                &refs,
                &Batch {
                    texts: batch,
                    first,
                },
            ),
        };
        for (&d, dec) in part.iter().zip(&decided) {
            out[d as usize] = *dec;
        }
        if let Some(s) = store.as_deref_mut() {
            s.put_many(
                part.iter()
                    .zip(&decided)
                    .filter(|(&d, dec)| dec.duplicate_of.is_none() && !signed.empty[d as usize])
                    .map(|(&d, _)| (first + d, batch[d as usize].as_ref())),
            )?;
        }
    }
    Ok(out)
}

/// Greedy decisions for every document of `signed` (numbered from 0), whose texts are all in
/// `store`, in decision order.
/// Deferred greedy decisions made a chunk at a time, so a caller can report progress and stop
/// between chunks ([`Run::step`]).
#[derive(Debug)]
struct Stepper {
    order: Vec<u32>,
    at: usize,
    greedy: Greedy,
    out: Vec<Decision>,
}

impl Stepper {
    fn new(cfg: &Config, signed: &Signed) -> Self {
        let undecided = Decision {
            duplicate_of: None,
            similarity: f64::NAN,
            examined: 0,
        };
        Stepper {
            order: cfg.decision_order(&signed.lengths),
            at: 0,
            greedy: Greedy::new(cfg.bands),
            out: vec![undecided; signed.len()],
        }
    }

    /// Decides the next chunk; true once every document is decided.
    fn step(&mut self, cfg: &Config, signed: &Signed, store: &Store) -> bool {
        let end = (self.at + CHUNK).min(self.order.len());
        let part = &self.order[self.at..end];
        let texts: Vec<String> = part.iter().map(|&d| store.text(d).into_owned()).collect();
        let refs: Vec<DocRef<'_>> = part
            .iter()
            .zip(&texts)
            .map(|(&d, t)| DocRef {
                doc: d,
                keys: signed.keys_of(d as usize),
                digest: signed.digests[d as usize],
                empty: signed.empty[d as usize],
                text: t,
            })
            .collect();
        for (&d, dec) in part.iter().zip(self.greedy.decide(cfg, &refs, store)) {
            self.out[d as usize] = dec;
        }
        self.at = end;
        self.at == self.order.len()
    }
}

/// Decides a streamed chunk `(texts, signed, first number)` after everything before it: kept
/// texts go into the store, and up to `samples` removed ones per kept document.
fn decide_streamed(
    cfg: &Config,
    greedy: &mut Greedy,
    store: &mut Store,
    sampled: &mut Vec<u8>,
    samples: u8,
    pending: &(Vec<String>, Signed, u32),
) -> Result<Vec<Decision>> {
    let (chunk, signed, first) = pending;
    let d = decide_batch(cfg, greedy, signed, chunk, *first, Some(store))?;
    if samples > 0 {
        sampled.resize(*first as usize + chunk.len(), 0);
        let mut items = Vec::new();
        for (pos, dec) in d.iter().enumerate() {
            if let Some(k) = dec.duplicate_of {
                let count = &mut sampled[k as usize];
                if *count < samples {
                    *count += 1;
                    items.push((*first + pos as u32, chunk[pos].as_str()));
                }
            }
        }
        store.put_many(items)?;
    }
    store.forget_before(*first + chunk.len() as u32);
    Ok(d)
}

fn check_count(total: usize) -> Result<()> {
    if total >= MAX_DOCS {
        return Err(Error::invalid(
            "texts",
            format!("more than {} documents in one run or index", MAX_DOCS - 1),
        ));
    }
    Ok(())
}

fn elapsed(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// One dedup run: documents are fed in chunks, then finished. Greedy in input order without
/// `all_pairs` decides as it goes: [`Run::feed`] signs a chunk while it decides the one fed
/// before (the signing is parallel, part of the deciding is not, so they share the cores), and
/// returns that one's decisions; [`Run::flush`] decides the last. It stores the kept documents'
/// texts (plus up to `samples` removed documents per kept one, for a report). The other modes
/// store every text and decide in [`Run::finish`]. Texts go to a [`Store`], which moves them to
/// a temporary file past its memory limit, so the run's memory is fixed-size state per document.
#[derive(Debug)]
pub struct Run {
    cfg: Config,
    all_pairs: bool,
    samples: u8,
    /// Removed documents stored per kept document (streaming).
    sampled: Vec<u8>,
    greedy: Greedy,
    store: Store,
    signed: Signed,
    /// Streaming: the chunk signed but not yet decided, and its first number.
    pending: Option<(Vec<String>, Signed, u32)>,
    /// Deferred greedy: the decisions made so far by [`Run::step`].
    stepper: Option<Stepper>,
    /// Components: the blocks decided so far by [`Run::step`].
    components: Option<Components>,
    /// Streaming: the decisions so far, in the arrays of the result (no second copy).
    decided: DedupOutput,
    /// Streaming: documents decided and kept so far, from which the kept documents' tables
    /// are sized ([`Run::expect`]).
    n_decided: usize,
    n_kept: usize,
    n: usize,
    t_sign: f64,
    t_decide: f64,
}

impl Run {
    pub fn new(cfg: Config, all_pairs: bool, store: Store, samples: u8) -> Self {
        let greedy = Greedy::new(cfg.bands);
        Run {
            cfg,
            all_pairs,
            samples,
            sampled: Vec::new(),
            greedy,
            store,
            signed: Signed::default(),
            pending: None,
            stepper: None,
            components: None,
            decided: DedupOutput::default(),
            n_decided: 0,
            n_kept: 0,
            n: 0,
            t_sign: 0.0,
            t_decide: 0.0,
        }
    }

    /// Whether chunks are decided as they are fed.
    pub fn streaming(&self) -> bool {
        self.cfg.cluster == Cluster::Greedy && self.cfg.keep == Keep::First && !self.all_pairs
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The stored text of a document (kept ones always; some removed ones when streaming with
    /// `samples`; every one otherwise).
    pub fn text(&self, doc: u32) -> Option<String> {
        self.store.get(doc).map(|t| t.into_owned())
    }

    /// Signs a chunk. When streaming, decides the chunk fed before (while signing this one) and
    /// returns its decisions (none after the first call).
    pub fn feed(&mut self, chunk: Vec<String>) -> Result<Option<Vec<Decision>>> {
        self.feed_from(chunk, None)
    }

    /// [`Run::feed`] for texts the core read from `source`: `at[i]` is where text `i` can be
    /// read again, so the store keeps that instead of a copy.
    pub fn feed_from(
        &mut self,
        chunk: Vec<String>,
        lines: Option<Lines<'_>>,
    ) -> Result<Option<Vec<Decision>>> {
        check_count(self.n + chunk.len())?;
        self.store.check()?;
        let first = self.n as u32;
        if let Some((source, at)) = lines {
            self.store.expect(source, first, at)?;
        }
        self.n += chunk.len();
        if !self.streaming() {
            let t = std::time::Instant::now();
            let signed = self.cfg.sign(&chunk);
            self.t_sign += elapsed(t);
            self.store.put_many(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(d, t)| (first + d as u32, t.as_str())),
            )?;
            self.store.forget_before(self.n as u32);
            self.signed.append(signed);
            return Ok(None);
        }
        self.greedy.size_tables(self.n_decided, self.n_kept);
        let t = std::time::Instant::now();
        let cfg = &self.cfg;
        let pending = self.pending.take();
        let (signed, decided) = match pending {
            None => (cfg.sign(&chunk), Ok(Vec::new())),
            Some(p) => {
                let (greedy, store, sampled) =
                    (&mut self.greedy, &mut self.store, &mut self.sampled);
                let samples = self.samples;
                rayon::join(
                    // copies of the chunk before take its keys
                    || cfg.sign_after(&chunk, Some((&p.0[..], &p.1))),
                    || decide_streamed(cfg, greedy, store, sampled, samples, &p),
                )
            }
        };
        let decided = decided?;
        self.store.check()?;
        self.t_sign += elapsed(t);
        self.record(&decided);
        self.decided.empty.extend_from_slice(&signed.empty);
        self.pending = Some((chunk, signed, first));
        Ok(Some(decided))
    }

    /// The rules that decide after every document was fed (greedy with `keep="longest"`, and
    /// components): decides the next block; returns (work done, work in all), in documents
    /// (greedy) or candidate pairs and then documents (components). Streaming runs decide as
    /// they are fed: (documents, documents).
    pub fn step(&mut self) -> (usize, usize) {
        if self.streaming() {
            return (self.n, self.n);
        }
        let t = std::time::Instant::now();
        let (cfg, signed, store) = (&self.cfg, &self.signed, &self.store);
        let progress = match cfg.cluster {
            Cluster::Greedy => {
                let s = self
                    .stepper
                    .get_or_insert_with(|| Stepper::new(cfg, signed));
                if s.at < s.order.len() {
                    s.step(cfg, signed, store);
                }
                (s.at, self.n)
            }
            Cluster::Components => {
                let c = self
                    .components
                    .get_or_insert_with(|| Components::new(cfg, signed, store));
                if !c.done() {
                    c.step(cfg, signed, store);
                }
                c.progress()
            }
        };
        self.t_decide += elapsed(t);
        progress
    }

    /// Streaming: decides the last chunk fed and returns its decisions.
    pub fn flush(&mut self) -> Result<Vec<Decision>> {
        let Some(p) = self.pending.take() else {
            return Ok(Vec::new());
        };
        let t = std::time::Instant::now();
        let (cfg, greedy, store, sampled) = (
            &self.cfg,
            &mut self.greedy,
            &mut self.store,
            &mut self.sampled,
        );
        let decided = decide_streamed(cfg, greedy, store, sampled, self.samples, &p)?;
        self.t_decide += elapsed(t);
        self.record(&decided);
        Ok(decided)
    }

    /// Says that the run will be fed about `docs` documents in all (the size of its inputs
    /// over the bytes a document has had so far, say): a hint, wrong or not the decisions are
    /// the same. Streaming, the kept documents' band tables are then made, once enough has been
    /// decided to tell the share kept, about the size they will end at
    /// ([`Greedy::size_tables`]).
    pub fn expect(&mut self, docs: usize) {
        self.greedy.expect(docs);
    }

    fn record(&mut self, decided: &[Decision]) {
        self.n_decided += decided.len();
        self.n_kept += decided.iter().filter(|d| d.duplicate_of.is_none()).count();
        self.decided.push(decided);
    }

    /// The decisions for every document fed (handed over: call it once).
    pub fn finish(&mut self) -> Result<DedupOutput> {
        // streaming: `feed` signs one chunk while it decides the one before, `decide` is the last
        let first = if self.streaming() {
            "sign_and_decide"
        } else {
            "signatures"
        };
        let mut seconds = vec![(first, self.t_sign)];
        let t = std::time::Instant::now();
        let mut out = if self.streaming() {
            self.flush()?;
            // no decision is left to make: the band tables (most of the run's memory) go now
            self.greedy = Greedy::new(0);
            seconds.push(("decide", self.t_decide));
            let mut out = std::mem::take(&mut self.decided);
            out.close();
            out
        } else {
            let (cfg, signed, store) = (&self.cfg, &self.signed, &self.store);
            let mut out = match cfg.cluster {
                Cluster::Greedy => {
                    let mut s = self
                        .stepper
                        .take()
                        .unwrap_or_else(|| Stepper::new(cfg, signed));
                    while s.at < s.order.len() && !s.step(cfg, signed, store) {}
                    DedupOutput::from_decisions(0, &s.out, signed.empty.clone())
                }
                Cluster::Components => {
                    let mut c = self
                        .components
                        .take()
                        .unwrap_or_else(|| Components::new(cfg, signed, store));
                    while !c.done() {
                        c.step(cfg, signed, store);
                    }
                    c.finish(signed)
                }
            };
            seconds.push(("decide", self.t_decide + elapsed(t)));
            if self.all_pairs {
                let t = std::time::Instant::now();
                out.pairs = verified_pairs(cfg, signed, store);
                seconds.push(("all_pairs", elapsed(t)));
            }
            out
        };
        self.store.check()?;
        out.seconds = seconds;
        out.stored_bytes = self.store.bytes();
        out.spilled = self.store.spilled();
        Ok(out)
    }
}

/// One-shot dedup of a corpus (all texts in memory).
pub fn dedup<S: AsRef<str> + Sync>(
    cfg: &Config,
    texts: &[S],
    all_pairs: bool,
) -> Result<DedupOutput> {
    check_count(texts.len())?;
    let signed = cfg.sign(texts);
    let mut out = match cfg.cluster {
        Cluster::Greedy => {
            let mut g = Greedy::new(cfg.bands);
            let d = decide_batch(cfg, &mut g, &signed, texts, 0, None)?;
            DedupOutput::from_decisions(0, &d, signed.empty.clone())
        }
        Cluster::Components => components(cfg, &signed, texts),
    };
    if all_pairs {
        out.pairs = verified_pairs(cfg, &signed, texts);
    }
    Ok(out)
}

/// For each non-empty document, the first document with the same text (itself when none is
/// before it): exact copies are settled by this, without shingling.
fn text_owners<T: Texts + ?Sized>(signed: &Signed, texts: &T) -> Vec<u32> {
    crate::greedy::first_with_same_text(
        signed.len(),
        |d| signed.empty[d],
        |d| signed.digests[d],
        |d| texts.text(d as u32),
    )
}

/// Features (shingle sets or signatures) of the documents one block of work needs, computed in
/// parallel; those of the block before that are needed again are kept, the others dropped, so
/// the features held are bounded by two blocks, not by the corpus.
#[derive(Debug, Default)]
struct Features {
    map: FxHashMap<u32, Feature>,
}

impl Features {
    fn prepare<T: Texts + ?Sized>(
        &mut self,
        cfg: &Config,
        texts: &T,
        docs: impl IntoIterator<Item = u32>,
    ) {
        let mut need: Vec<u32> = docs.into_iter().collect();
        need.sort_unstable();
        need.dedup();
        let mut old = std::mem::take(&mut self.map);
        let missing: Vec<u32> = need
            .iter()
            .copied()
            .filter(|d| !old.contains_key(d))
            .collect();
        let computed: Vec<(u32, Feature)> = missing
            .par_iter()
            .with_min_len(8)
            .map_init(
                || (Worker::default(), Scratch::default()),
                |(w, s), &d| (d, feature(cfg, &texts.text(d), w, s)),
            )
            .collect();
        let mut map = FxHashMap::with_capacity_and_hasher(need.len(), Default::default());
        for d in need {
            if let Some(f) = old.remove(&d) {
                map.insert(d, f);
            }
        }
        map.extend(computed);
        self.map = map;
    }

    fn get(&self, d: u32) -> &Feature {
        &self.map[&d]
    }
}

/// Candidate pairs verified at a time by [`Components`] (a pair whose documents an earlier
/// block connected is not verified), and documents scored at a time after them.
const BLOCK: usize = 1 << 14;

/// [`Cluster::Components`], decided a block at a time (so a caller can show progress and stop
/// between blocks): connected components of the verified candidate pairs, one kept document
/// per component (the first, or the longest), then each removed document's similarity to it.
#[derive(Debug)]
struct Components {
    owner: Vec<u32>,
    uf: UnionFind,
    cands: Vec<u64>,
    n_cands: usize,
    /// Pairs gone through, then documents scored.
    at_pair: usize,
    at_doc: usize,
    examined: Vec<u32>,
    n_verified: usize,
    reps: Vec<u32>,
    sims: Vec<f64>,
    feats: Features,
}

impl Components {
    fn new<T: Texts + ?Sized>(cfg: &Config, signed: &Signed, texts: &T) -> Self {
        let n = signed.len();
        let owner = text_owners(signed, texts);
        let mut uf = UnionFind::new(n);
        for (d, &o) in owner.iter().enumerate() {
            uf.union(d as u32, o);
        }
        let active: Vec<bool> = (0..n)
            .map(|d| !signed.empty[d] && owner[d] == d as u32)
            .collect();
        let cands = lsh::candidate_pairs(&signed.keys, cfg.bands, 0, &active);
        let mut c = Components {
            owner,
            uf,
            n_cands: cands.len(),
            cands,
            at_pair: 0,
            at_doc: 0,
            examined: vec![0; n],
            n_verified: 0,
            reps: Vec::new(),
            sims: Vec::with_capacity(n),
            feats: Features::default(),
        };
        if c.cands.is_empty() {
            c.reps = c.representatives(cfg, signed);
        }
        c
    }

    /// (work done, work in all): candidate pairs, then documents.
    fn progress(&self) -> (usize, usize) {
        (self.at_pair + self.at_doc, self.n_cands + self.owner.len())
    }

    fn done(&self) -> bool {
        self.at_pair == self.n_cands && self.at_doc == self.owner.len()
    }

    /// One block of pairs, or of documents once the pairs are done.
    fn step<T: Texts + ?Sized>(&mut self, cfg: &Config, signed: &Signed, texts: &T) {
        if self.at_pair < self.n_cands {
            let end = (self.at_pair + BLOCK).min(self.n_cands);
            let uf = &mut self.uf;
            let todo: Vec<(u32, u32)> = self.cands[self.at_pair..end]
                .iter()
                .map(|&p| lsh::unpack(p))
                .filter(|&(i, j)| uf.find(i) != uf.find(j))
                .collect();
            self.feats
                .prepare(cfg, texts, todo.iter().flat_map(|&(i, j)| [i, j]));
            let feats = &self.feats;
            let ok: Vec<bool> = todo
                .par_iter()
                .with_min_len(64)
                .map(|&(i, j)| similarity(feats.get(i), feats.get(j)) >= cfg.threshold)
                .collect();
            for (&(i, j), ok) in todo.iter().zip(ok) {
                self.examined[i as usize] += 1;
                self.examined[j as usize] += 1;
                if ok {
                    self.uf.union(i, j);
                }
            }
            self.n_verified += todo.len();
            self.at_pair = end;
            if self.at_pair == self.n_cands {
                self.cands = Vec::new();
                self.reps = self.representatives(cfg, signed);
            }
            return;
        }
        // each removed document's similarity to its kept one, a block of documents at a time
        let end = (self.at_doc + BLOCK).min(self.owner.len());
        let (owner, reps) = (&self.owner, &self.reps);
        let apart = |d: usize| {
            let r = reps[d] as usize;
            r != d && owner[d] != owner[r]
        };
        self.feats.prepare(
            cfg,
            texts,
            (self.at_doc..end)
                .filter(|&d| apart(d))
                .flat_map(|d| [owner[d], owner[reps[d] as usize]]),
        );
        let feats = &self.feats;
        let sims: Vec<f64> = (self.at_doc..end)
            .into_par_iter()
            .with_min_len(256)
            .map(|d| {
                let r = reps[d] as usize;
                if r == d {
                    f64::NAN
                } else if owner[d] == owner[r] {
                    1.0
                } else {
                    similarity(feats.get(owner[d]), feats.get(owner[r]))
                }
            })
            .collect();
        self.sims.extend(sims);
        self.at_doc = end;
    }

    /// The kept document of each document's component.
    fn representatives(&mut self, cfg: &Config, signed: &Signed) -> Vec<u32> {
        let n = self.owner.len();
        let mut rep: FxHashMap<u32, u32> = FxHashMap::default();
        for d in 0..n as u32 {
            let root = self.uf.find(d);
            let best = rep.entry(root).or_insert(root);
            if cfg.keep == Keep::Longest
                && signed.lengths[d as usize] > signed.lengths[*best as usize]
            {
                *best = d;
            }
        }
        (0..n as u32).map(|d| rep[&self.uf.find(d)]).collect()
    }

    fn finish(self, signed: &Signed) -> DedupOutput {
        let decisions: Vec<Decision> = (0..self.owner.len())
            .map(|d| Decision {
                duplicate_of: (self.reps[d] != d as u32).then_some(self.reps[d]),
                similarity: self.sims[d],
                examined: self.examined[d],
            })
            .collect();
        let mut out = DedupOutput::from_decisions(0, &decisions, signed.empty.clone());
        out.n_candidates = self.n_verified;
        out
    }
}

/// [`Cluster::Components`] in one call.
fn components<T: Texts + ?Sized>(cfg: &Config, signed: &Signed, texts: &T) -> DedupOutput {
    let mut c = Components::new(cfg, signed, texts);
    while !c.done() {
        c.step(cfg, signed, texts);
    }
    c.finish(signed)
}

/// Every candidate pair (documents sharing a bucket) with similarity at or above the threshold,
/// sorted. Quadratic in the size of a cluster: m copies of a text give m(m-1)/2 pairs.
pub fn verified_pairs<T: Texts + ?Sized>(cfg: &Config, signed: &Signed, texts: &T) -> Vec<Pair> {
    let owner = text_owners(signed, texts);
    let active: Vec<bool> = signed.empty.iter().map(|e| !e).collect();
    let cands = lsh::candidate_pairs(&signed.keys, cfg.bands, 0, &active);
    let mut feats = Features::default();
    let mut out = Vec::new();
    for block in cands.chunks(BLOCK) {
        let ends = |&p: &u64| {
            let (i, j) = lsh::unpack(p);
            [owner[i as usize], owner[j as usize]]
        };
        feats.prepare(cfg, texts, block.iter().flat_map(ends));
        let feats = &feats;
        out.par_extend(block.par_iter().with_min_len(256).filter_map(|&p| {
            let (i, j) = lsh::unpack(p);
            let (oi, oj) = (owner[i as usize], owner[j as usize]);
            let jac = if oi == oj {
                1.0
            } else {
                similarity(feats.get(oi), feats.get(oj))
            };
            (jac >= cfg.threshold).then_some(Pair { i, j, jaccard: jac })
        }));
    }
    out
}

/// A growing, persistent dedup index (greedy): the kept documents' texts and band buckets.
/// A document added later is a duplicate iff a kept document of the index or earlier in its
/// batch is within the threshold, so adding a corpus in batches gives the decisions of one run.
#[derive(Clone, Debug)]
pub struct Index {
    pub cfg: Config,
    greedy: Greedy,
    /// Texts of the kept documents (removed ones are absent), in memory.
    store: Store,
}

const MAGIC: &[u8; 8] = b"TSDEDUPI";
/// Version 2: kept documents only (greedy). Version 1 (every document, union-find) still loads.
pub const FORMAT_VERSION: u32 = 2;

/// The file format's byte for each setting's value (one table each way).
const SCHEMES: [Scheme; 3] = [
    Scheme::Native,
    Scheme::DatasketchLegacy,
    Scheme::DatasketchAffine32,
];
const NORMALIZES: [Normalize; 3] = [Normalize::None, Normalize::Default, Normalize::Nfkc];
const VERIFIES: [Verify; 2] = [Verify::Exact, Verify::Minhash];
const KEEPS: [Keep; 2] = [Keep::First, Keep::Longest];

fn code<T: PartialEq>(table: &[T], v: &T) -> u8 {
    table.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn decode<T: Copy>(table: &[T], b: u8, what: &str) -> Result<T> {
    table
        .get(b as usize)
        .copied()
        .ok_or_else(|| Error::Corrupt(format!("unknown {what} code {b}")))
}

pub(crate) fn settings_bytes(c: &Config, w: &mut Vec<u8>) {
    w.extend_from_slice(&c.threshold.to_le_bytes());
    put_u64(w, c.num_perm() as u64);
    put_u64(w, c.hasher.seed);
    w.push(code(&SCHEMES, &c.hasher.scheme));
    let kind = c.hasher.shingler.kind;
    w.push(matches!(kind, ShingleKind::Word(_)) as u8);
    put_u64(w, kind.size() as u64);
    w.push(code(&NORMALIZES, &c.hasher.shingler.normalize));
    put_u64(w, c.bands as u64);
    put_u64(w, c.rows as u64);
    w.push(code(&VERIFIES, &c.verify));
    w.push(code(&KEEPS, &c.keep));
}

fn read_settings(r: &mut Reader<'_>) -> Result<Config> {
    let threshold = f64::from_le_bytes(r.array::<8>()?);
    let num_perm = r.u64()? as usize;
    let seed = r.u64()?;
    let scheme = decode(&SCHEMES, r.u8()?, "scheme")?;
    let word = decode(&[false, true], r.u8()?, "shingle kind")?;
    let k = r.u64()? as usize;
    let kind = if word {
        ShingleKind::Word(k)
    } else {
        ShingleKind::Char(k)
    };
    let normalize = decode(&NORMALIZES, r.u8()?, "normalization")?;
    let bands = r.u64()? as usize;
    let rows = r.u64()? as usize;
    let verify = decode(&VERIFIES, r.u8()?, "verification")?;
    let keep = decode(&KEEPS, r.u8()?, "keep rule")?;
    Shingler::typed(kind, normalize)
        .and_then(|sh| {
            Config::new(
                threshold,
                num_perm,
                seed,
                scheme,
                sh,
                Some(bands),
                Some(rows),
                verify,
                keep,
                Cluster::Greedy,
            )
        })
        .map_err(|e| Error::Corrupt(format!("bad settings: {e}")))
}

impl Index {
    pub fn new(cfg: Config) -> Result<Self> {
        if cfg.cluster != Cluster::Greedy {
            return Err(Error::invalid(
                "cluster",
                "a dedup index is greedy (cluster='greedy'); components need the whole corpus",
            ));
        }
        let greedy = Greedy::new(cfg.bands);
        Ok(Index {
            cfg,
            greedy,
            store: Store::in_memory(),
        })
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The kept documents and their texts, in number order.
    pub fn kept_documents(&self) -> Vec<(u32, String)> {
        (0..self.len() as u32)
            .filter_map(|d| self.store.get(d).map(|t| (d, t.into_owned())))
            .collect()
    }

    /// Which documents were kept.
    pub fn kept(&self) -> Vec<bool> {
        (0..self.len() as u32).map(|d| self.store.has(d)).collect()
    }

    /// Dedups a new shard against the kept documents and within itself, then adds it.
    pub fn add<S: AsRef<str> + Sync>(&mut self, texts: &[S]) -> Result<DedupOutput> {
        let first = self.len();
        check_count(first + texts.len())?;
        let signed = self.cfg.sign(texts);
        let d = decide_batch(
            &self.cfg,
            &mut self.greedy,
            &signed,
            texts,
            first as u32,
            Some(&mut self.store),
        )?;
        // an empty document is kept: remember it as such (it is never in the buckets)
        self.store.put_many(
            texts
                .iter()
                .enumerate()
                .filter(|(pos, _)| signed.empty[*pos])
                .map(|(pos, t)| ((first + pos) as u32, t.as_ref())),
        )?;
        Ok(DedupOutput::from_decisions(first, &d, signed.empty))
    }

    /// Kept documents whose similarity to `text` is at least the threshold, best first.
    pub fn query(&self, text: &str) -> Vec<(u32, f64)> {
        let signed = self.cfg.sign(&[text]);
        if signed.empty[0] {
            return Vec::new();
        }
        let mut cands = Vec::new();
        self.greedy.table.candidates(signed.keys_of(0), &mut cands);
        let mine = feature(
            &self.cfg,
            text,
            &mut Worker::default(),
            &mut Scratch::default(),
        );
        let mut hits: Vec<(u32, f64)> = cands
            .par_iter()
            .map_init(
                || (Worker::default(), Scratch::default()),
                |(w, s), &d| {
                    let theirs = feature(&self.cfg, &self.store.text(d), w, s);
                    (d, similarity(&mine, &theirs))
                },
            )
            .filter(|&(_, j)| j >= self.cfg.threshold)
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }

    /// The index as bytes: magic, format version, payload, checksum (`hash64` of the payload).
    /// The payload: settings, the number of documents, then each kept document (number, text).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        settings_bytes(&self.cfg, &mut w);
        put_u64(&mut w, self.len() as u64);
        let kept: Vec<(usize, String)> = (0..self.len())
            .filter_map(|d| self.store.get(d as u32).map(|t| (d, t.into_owned())))
            .collect();
        put_u64(&mut w, kept.len() as u64);
        for (d, t) in kept {
            put_u64(&mut w, d as u64);
            put_u64(&mut w, t.len() as u64);
            w.extend_from_slice(t.as_bytes());
        }
        let mut out = Vec::with_capacity(w.len() + 28);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        put_u64(&mut out, w.len() as u64);
        out.extend_from_slice(&w);
        put_u64(&mut out, hash64(&w));
        out
    }

    /// Reads what [`Index::to_bytes`] wrote (this version or version 1, whose removed documents
    /// are dropped); anything else is refused with [`Error::Corrupt`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |m: &str| Error::Corrupt(m.to_string());
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a textsieve dedup index (bad magic bytes)"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION && version != 1 {
            return Err(Error::Corrupt(format!(
                "dedup index format version {version}; this textsieve reads versions 1 and {FORMAT_VERSION}"
            )));
        }
        let mut r = Reader { b: &bytes[12..] };
        let n = r.u64()? as usize;
        let payload = r.take(n)?;
        let sum = r.u64()?;
        if !r.b.is_empty() {
            return Err(corrupt("trailing bytes after the checksum"));
        }
        if hash64(payload) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader { b: payload };
        let cfg = read_settings(&mut r)?;
        let n_docs = r.u64()? as usize;
        if n_docs > payload.len() || n_docs >= MAX_DOCS {
            return Err(corrupt("document count larger than the file"));
        }
        let mut texts: Vec<Option<String>> = vec![None; n_docs];
        let utf8 = |b: &[u8]| -> Result<String> {
            Ok(std::str::from_utf8(b)
                .map_err(|_| corrupt("text is not UTF-8"))?
                .to_owned())
        };
        if version == 1 {
            // every text, signatures, empty flags, kept flags, union-find parents
            let mut all = Vec::with_capacity(n_docs);
            for _ in 0..n_docs {
                let len = r.u64()? as usize;
                all.push(utf8(r.take(len)?)?);
            }
            let sig_bytes = n_docs
                .checked_mul(cfg.num_perm() * 4)
                .ok_or_else(|| corrupt("signatures truncated"))?;
            r.take(sig_bytes)?;
            r.take(n_docs)?;
            let kept = r.take(n_docs)?;
            r.take(n_docs * 4)?;
            for (d, t) in all.into_iter().enumerate() {
                if kept[d] != 0 {
                    texts[d] = Some(t);
                }
            }
        } else {
            let n_kept = r.u64()? as usize;
            if n_kept > n_docs {
                return Err(corrupt("more kept documents than documents"));
            }
            let mut last = None;
            for _ in 0..n_kept {
                let d = r.u64()? as usize;
                if d >= n_docs || last.is_some_and(|l| d <= l) {
                    return Err(corrupt("kept document numbers out of order"));
                }
                last = Some(d);
                let len = r.u64()? as usize;
                texts[d] = Some(utf8(r.take(len)?)?);
            }
        }
        if !r.b.is_empty() {
            return Err(corrupt("unexpected bytes at the end of the payload"));
        }
        let mut idx = Index::new(cfg)?;
        idx.store.grow(n_docs);
        idx.store.put_many(
            texts
                .iter()
                .enumerate()
                .filter_map(|(d, t)| t.as_deref().map(|t| (d as u32, t))),
        )?;
        let kept: Vec<(u32, &str)> = texts
            .iter()
            .enumerate()
            .filter_map(|(d, t)| t.as_deref().map(|t| (d as u32, t)))
            .collect();
        let only: Vec<&str> = kept.iter().map(|k| k.1).collect();
        let signed = idx.cfg.sign(&only);
        let refs: Vec<DocRef<'_>> = kept
            .iter()
            .enumerate()
            .filter(|(pos, _)| !signed.empty[*pos])
            .map(|(pos, &(d, _))| DocRef {
                doc: d,
                ..signed.doc(&only, 0, pos)
            })
            .collect();
        idx.greedy
            .table
            .insert_many(&refs.iter().collect::<Vec<_>>());
        Ok(idx)
    }
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.b.len() {
            return Err(Error::Corrupt("file is truncated".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
}

/// The settings the core's tests use: `threshold`, 128 permutations, seed 1, char 5-shingles,
/// the default normalization and bands, exact verification.
#[cfg(test)]
pub(crate) fn test_config(threshold: f64, keep: Keep, cluster: Cluster) -> Config {
    Config::new(
        threshold,
        128,
        1,
        Scheme::Native,
        Shingler::new("char", 5, "default").unwrap(),
        None,
        None,
        Verify::Exact,
        keep,
        cluster,
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keep: &str, cluster: &str) -> Config {
        test_config(
            0.7,
            Keep::parse(keep).unwrap(),
            Cluster::parse(cluster).unwrap(),
        )
    }

    fn corpus() -> Vec<String> {
        vec![
            "the quick brown fox jumps over the lazy dog".into(),
            "".into(),
            "an entirely different sentence about rust and python".into(),
            "the quick brown fox jumps over the lazy dog!".into(),
            " ".into(),
            "the quick brown fox jumps over the lazy dog, then sleeps in the sun all afternoon"
                .into(),
        ]
    }

    #[test]
    fn union_find_roots_are_minima() {
        let mut uf = UnionFind::new(5);
        uf.union(4, 2);
        uf.union(2, 3);
        uf.union(3, 1);
        assert_eq!(uf.find(4), 1);
        assert_eq!(uf.find(0), 0);
        assert!(UnionFind::from_parents(vec![0, 2, 2]).is_err());
    }

    #[test]
    fn dedup_first_and_longest() {
        let texts = corpus();
        for cluster in ["greedy", "components"] {
            let out = dedup(&cfg("first", cluster), &texts, true).unwrap();
            assert_eq!(out.keep, vec![true, true, true, false, true, true]);
            assert_eq!(out.duplicate_of, vec![-1, -1, -1, 0, -1, -1]);
            assert_eq!(out.empty, vec![false, true, false, false, true, false]);
            assert_eq!(out.pairs.len(), 1);
            assert!(out.pairs.iter().all(|p| p.jaccard >= 0.7 && p.i < p.j));
            assert_eq!(out.n_clusters, 5);
            let out = dedup(&cfg("longest", cluster), &texts, false).unwrap();
            assert_eq!(out.keep, vec![false, true, true, true, true, true]);
            assert_eq!(out.cluster[0], 3);
            assert!(out.pairs.is_empty());
        }
    }

    #[test]
    fn run_streams_and_matches_one_shot() {
        let mut texts = corpus();
        texts.extend(corpus());
        for keep in ["first", "longest"] {
            for cluster in ["greedy", "components"] {
                let c = cfg(keep, cluster);
                let whole = dedup(&c, &texts, false).unwrap();
                for limit in [usize::MAX, 16] {
                    let store = Store::spilling(&std::env::temp_dir(), limit);
                    let mut run = Run::new(c.clone(), true, store, 3);
                    for part in texts.chunks(4) {
                        run.feed(part.to_vec()).unwrap();
                    }
                    let fed = run.finish().unwrap();
                    assert_eq!(fed.keep, whole.keep, "{keep} {cluster}");
                    assert_eq!(fed.duplicate_of, whole.duplicate_of);
                    assert_eq!(fed.spilled, limit == 16);
                    assert_eq!(run.text(5).as_deref(), Some(texts[5].as_str()));
                }
                let mut run = Run::new(c.clone(), false, Store::in_memory(), 0);
                let mut streamed = Vec::new();
                for part in texts.chunks(4) {
                    let d = run.feed(part.to_vec()).unwrap();
                    assert_eq!(d.is_some(), run.streaming());
                    streamed.extend(d.unwrap_or_default());
                }
                if run.streaming() {
                    // a chunk's decisions come with the next feed, the last with flush
                    let last = texts.chunks(4).last().map_or(0, |c| c.len());
                    assert_eq!(streamed.len(), texts.len() - last);
                    streamed.extend(run.flush().unwrap());
                    let dup: Vec<i64> = streamed
                        .iter()
                        .map(|d| d.duplicate_of.map_or(-1, i64::from))
                        .collect();
                    assert_eq!(dup, whole.duplicate_of);
                }
                // deferred rules decide a block per step, as far as they are asked
                let (mut done, total) = run.step();
                while done < total {
                    let (d, t) = run.step();
                    assert!(d > done && t == total);
                    done = d;
                }
                assert_eq!(run.step(), (total, total));
                assert!(total >= texts.len());
                let fed = run.finish().unwrap();
                assert_eq!(fed.duplicate_of, whole.duplicate_of);
                assert_eq!(fed.empty, whole.empty);
                if run.streaming() {
                    // removed documents' texts are not kept without samples
                    assert_eq!(run.text(3), None);
                }
            }
        }
    }

    #[test]
    fn sketches_are_made_of_the_shingle_sets_hashes() {
        // the sketch signing makes is the one the shingle set makes (the set an exact
        // verification compares), for ASCII and other texts, short, long and empty ones,
        // character and word shingles; a copy's is its source's; the other schemes and a
        // signature-only verification make none
        let long: String = (0..40_000u32)
            .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
            .collect();
        let texts: Vec<String> = vec![
            "the quick brown fox jumps over the lazy dog".into(),
            "".into(),
            "abc".into(),
            "日本語の文章を書きます。日本語の文章を読みます。".into(),
            "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ㍿ ﬁne".into(),
            long.clone(),
            "the quick brown fox jumps over the lazy dog".into(),
        ];
        for kind in ["char", "word"] {
            let mut c = cfg("first", "greedy");
            c.hasher.shingler =
                Shingler::new(kind, if kind == "char" { 5 } else { 2 }, "default").unwrap();
            let signed = c.sign_sketched(&texts);
            assert_eq!(signed.keys, c.sign(&texts).keys);
            let mut scratch = crate::shingle::Scratch::default();
            for (i, t) in texts.iter().enumerate() {
                let set = c.hasher.shingler.hash_set(t, &mut scratch);
                let got = signed.sketch(i);
                if set.is_empty() {
                    assert!(got.is_empty(), "{kind} {i}");
                    continue;
                }
                assert!(got.len().is_power_of_two() && got.len() >= crate::sketch::MIN_WORDS);
                assert!(
                    got.len() <= crate::sketch::words_for(t.len()).max(8),
                    "{kind} {i}"
                );
                let mut want = vec![0u64; got.len()];
                crate::sketch::add(&mut want, &set);
                assert_eq!(got, &want[..], "{kind} text {i}");
                // it admits its own set, and rules out an unrelated one
                assert!(crate::sketch::admits(got, &set, 0.99, set.len() as u32));
            }
            assert_eq!(signed.sketch(6), signed.sketch(0));
            if kind == "char" {
                assert!(signed.sketch(5).len() > 64, "a long text, a large sketch");
            }
            let unrelated = c.hasher.shingler.hash_set(&long, &mut scratch);
            assert!(!crate::sketch::admits(signed.sketch(0), &unrelated, 0.5, 0));
            // appended, the offsets follow
            let mut two = c.sign_sketched(&texts[..2]);
            two.append(c.sign_sketched(&texts[2..]));
            for i in 0..texts.len() {
                assert_eq!(two.sketch(i), signed.sketch(i));
            }
        }
        let mut c = cfg("first", "greedy");
        c.verify = Verify::Minhash;
        assert!(c.sign_sketched(&texts).sketches.is_empty());
        let c = Config::new(
            0.7,
            128,
            1,
            Scheme::DatasketchAffine32,
            Shingler::new("char", 5, "default").unwrap(),
            None,
            None,
            Verify::Exact,
            Keep::First,
            Cluster::parse("greedy").unwrap(),
        )
        .unwrap();
        let signed = c.sign_sketched(&texts);
        assert!((0..texts.len()).all(|i| signed.sketch(i).is_empty()));
    }

    #[test]
    fn copies_take_the_keys_of_their_first_text() {
        // copies within the batch and of the batch before, an empty text and its copy, texts
        // that differ by a byte: the same as signing each text alone
        let c = cfg("longest", "greedy");
        let before: Vec<String> = vec!["alpha beta gamma delta".into(), "".into(), "x y".into()];
        let texts: Vec<String> = vec![
            "one two three four five".into(),
            "alpha beta gamma delta".into(),
            "one two three four five".into(),
            "one two three four fivE".into(),
            "".into(),
            "x y".into(),
            "one two three four five".into(),
        ];
        let signed_before = c.sign(&before);
        let alone = |t: &String| c.sign(std::slice::from_ref(t));
        for prior in [None, Some((&before[..], &signed_before))] {
            let got = c.sign_after(&texts, prior);
            for (i, t) in texts.iter().enumerate() {
                let want = alone(t);
                assert_eq!(got.keys_of(i), want.keys_of(0), "text {i}");
                assert_eq!(got.empty[i], want.empty[0], "text {i}");
                assert_eq!(got.lengths[i], want.lengths[0], "text {i}");
                assert_eq!(got.digests[i], want.digests[0], "text {i}");
            }
        }
        let from = copies(
            &texts,
            &c.sign(&texts).digests,
            Some((&before[..], &signed_before)),
        );
        let shown: Vec<String> = from.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(
            shown,
            [
                "None",
                "Some(Before(0))",
                "Some(Here(0))",
                "None",
                "Some(Before(1))",
                "Some(Before(2))",
                "Some(Here(0))"
            ]
        );
    }

    #[test]
    fn a_run_told_its_size_decides_alike() {
        // enough documents for the tables to be sized from the share kept (after SIZE_AFTER),
        // with copies and near copies; told the right size, far too few or far too many
        let c = cfg("first", "greedy");
        let word = |x: u64| format!("w{:x}", x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44);
        let texts: Vec<String> = (0..34_000u64)
            .map(|i| {
                let j = if i % 3 == 0 { i / 7 } else { i };
                let mut t: Vec<String> = (0..12).map(|w| word(j * 16 + w)).collect();
                if i % 5 == 0 {
                    t[11] = word(i);
                }
                t.join(" ")
            })
            .collect();
        let run = |expect: Option<usize>| {
            let mut run = Run::new(c.clone(), false, Store::in_memory(), 0);
            if let Some(n) = expect {
                run.expect(n);
            }
            for part in texts.chunks(CHUNK) {
                run.feed(part.to_vec()).unwrap();
            }
            run.flush().unwrap();
            let sized = run.greedy.expected.is_none();
            (run.finish().unwrap().duplicate_of, sized)
        };
        let (plain, _) = run(None);
        assert!(plain.iter().filter(|&&d| d >= 0).count() > 5_000);
        for n in [texts.len(), 10, 10_000_000] {
            let (told, sized) = run(Some(n));
            assert_eq!(told, plain, "told {n}");
            // too few to be worth it: the hint is left unused
            assert_eq!(sized, n != 10, "told {n}");
        }
    }

    #[test]
    fn components_chain_but_greedy_does_not() {
        // windows of one word list: neighbours similar, far windows not
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let texts: Vec<String> = (0..60)
            .map(|i| words[i * 2..i * 2 + 40].join(" "))
            .collect();
        let g = dedup(&cfg("first", "greedy"), &texts, false).unwrap();
        let c = dedup(&cfg("first", "components"), &texts, false).unwrap();
        assert!(g.keep.iter().filter(|&&k| k).count() > 5);
        assert_eq!(c.keep.iter().filter(|&&k| k).count(), 1);
        assert!(g.similarity.iter().all(|s| s.is_nan() || *s >= 0.7));
        assert!(c.similarity.iter().any(|s| *s < 0.7));
    }

    #[test]
    fn index_matches_one_shot_and_round_trips() {
        let mut texts = corpus();
        texts.extend(corpus().into_iter().map(|t| t.to_uppercase()));
        let c = cfg("first", "greedy");
        let whole = dedup(&c, &texts, false).unwrap();
        let mut idx = Index::new(c.clone()).unwrap();
        let a = idx.add(&texts[..3]).unwrap();
        let b = idx.add(&texts[3..]).unwrap();
        assert_eq!([a.keep, b.keep].concat(), whole.keep);
        assert_eq!(
            [a.duplicate_of, b.duplicate_of].concat(),
            whole.duplicate_of
        );
        let bytes = idx.to_bytes();
        let back = Index::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.kept(), whole.keep);
        assert_eq!(back.query(&texts[0]).first().map(|h| h.0), Some(0));
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(matches!(Index::from_bytes(&bad), Err(Error::Corrupt(_))));
        assert!(Index::from_bytes(b"hello world, not an index").is_err());
        assert!(Index::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Index::new(cfg("first", "components")).is_err());
    }

    #[test]
    fn components_roots_are_smallest_members() {
        let (nodes, roots) = components_of_edges(&[9, 4, 30], &[4, 2, 31]).unwrap();
        assert_eq!(nodes, vec![2, 4, 9, 30, 31]);
        assert_eq!(roots, vec![2, 2, 2, 30, 30]);
        assert!(components_of_edges(&[1], &[]).is_err());
        assert_eq!(components_of_edges(&[], &[]).unwrap(), (vec![], vec![]));
    }
}
