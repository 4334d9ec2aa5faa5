//! From candidate pairs to a deduplicated corpus: exact verification, union-find clusters, the
//! keep policy, and the persistent [`Index`] that dedups shard after shard.
//!
//! The whole pipeline: signatures ([`Config::sign`], chunk by chunk) → band keys → candidate
//! pairs → verification (exact Jaccard of the shingle sets, or the signature estimate) → pairs at
//! or above the threshold → union-find → one kept document per cluster.
//!
//! Documents are numbered globally: in an [`Index`], the documents added before come first. The
//! root of every union-find component is its smallest document (union links the larger root under
//! the smaller), so "the component holds an earlier document" is "root < first new document".
//! A cluster's id is the number of its kept document; a removed document's `duplicate_of` is that
//! same kept document, and its `similarity` the exact Jaccard to it (which can be below the
//! threshold when the cluster is a chain).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::lsh::{self, BandTable};
use crate::minhash::{estimate_jaccard, MinHasher, Scheme, Worker};
use crate::shingle::{jaccard_sorted, Normalize, Scratch, ShingleKind, Shingler};

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
}

impl Config {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        threshold: f64,
        num_perm: usize,
        seed: u64,
        scheme: &str,
        shingle: &str,
        k: usize,
        normalize: &str,
        bands: Option<usize>,
        rows: Option<usize>,
        verify: &str,
        keep: &str,
    ) -> Result<Self> {
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::invalid(
                "threshold",
                format!("expected 0 < threshold <= 1, got {threshold}"),
            ));
        }
        let shingler = Shingler::new(shingle, k, normalize)?;
        let hasher = MinHasher::new(num_perm, seed, Scheme::parse(scheme)?, shingler)?;
        let (bands, rows) = if bands.is_none() && rows.is_none() {
            lsh::recall_params(threshold, num_perm, MIN_RECALL)?
        } else {
            lsh::explicit_params(bands, rows, num_perm)?
        };
        let verify = Verify::parse(verify)?;
        let keep = Keep::parse(keep)?;
        Ok(Config {
            threshold,
            hasher,
            bands,
            rows,
            verify,
            keep,
        })
    }

    pub fn num_perm(&self) -> usize {
        self.hasher.num_perm
    }

    /// Signatures and per-document facts of a batch, in parallel (same bits for any thread count).
    pub fn sign<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Signed {
        let p = self.num_perm();
        let mut sigs = vec![0u32; texts.len() * p];
        let facts: Vec<(bool, usize)> = sigs
            .par_chunks_mut(p)
            .zip(texts.par_iter())
            .with_min_len(8)
            .map_init(Worker::default, |w, (row, t)| {
                let t = t.as_ref();
                let n = w.signature(&self.hasher, t, row);
                (n == 0, t.chars().count())
            })
            .collect();
        Signed {
            sigs,
            empty: facts.iter().map(|f| f.0).collect(),
            lengths: facts.iter().map(|f| f.1).collect(),
        }
    }
}

/// Signatures of a batch: row-major `(n, num_perm)`, which documents have no shingles, and
/// their lengths in characters.
#[derive(Clone, Debug, Default)]
pub struct Signed {
    pub sigs: Vec<u32>,
    pub empty: Vec<bool>,
    pub lengths: Vec<usize>,
}

impl Signed {
    pub fn len(&self) -> usize {
        self.empty.len()
    }

    pub fn is_empty(&self) -> bool {
        self.empty.is_empty()
    }

    pub fn append(&mut self, mut other: Signed) {
        self.sigs.append(&mut other.sigs);
        self.empty.append(&mut other.empty);
        self.lengths.append(&mut other.lengths);
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
pub fn components(i: &[u64], j: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
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
    pub cluster: Vec<i64>,
    pub duplicate_of: Vec<i64>,
    pub similarity: Vec<f64>,
    pub pairs: Vec<Pair>,
    pub empty: Vec<bool>,
    pub n_candidates: usize,
    pub n_clusters: usize,
    pub seconds: Vec<(&'static str, f64)>,
}

/// Shingle sets of the documents that need one, computed in parallel.
struct Sets {
    first: u32,
    sets: Vec<Option<Vec<u64>>>,
}

impl Sets {
    fn build<'a>(
        cfg: &Config,
        docs: &[u32],
        n_total: usize,
        text_of: &(impl Fn(u32) -> &'a str + Sync),
    ) -> Sets {
        let mut need = docs.to_vec();
        need.sort_unstable();
        need.dedup();
        let first = need.first().copied().unwrap_or(0);
        let span = need
            .last()
            .map_or(0, |&l| (l - first) as usize + 1)
            .min(n_total);
        let computed: Vec<(u32, Vec<u64>)> = need
            .par_iter()
            .map_init(Scratch::default, |s, &d| {
                (d, cfg.hasher.shingler.hash_set(text_of(d), s))
            })
            .collect();
        let mut sets = vec![None; span];
        for (d, v) in computed {
            sets[(d - first) as usize] = Some(v);
        }
        Sets { first, sets }
    }

    fn get(&self, d: u32) -> &[u64] {
        d.checked_sub(self.first)
            .and_then(|i| self.sets.get(i as usize))
            .and_then(|s| s.as_deref())
            .unwrap_or(&[])
    }
}

fn elapsed(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Verifies candidate pairs, clusters, applies the keep policy for the new batch.
///
/// `n_old` documents came before (`old_kept` says which were kept); the batch's documents are
/// `n_old..n_old + new.len()`. `sig_of(d)` and `text_of(d)` give any document's signature and
/// text; `uf` covers all documents and is updated.
#[allow(clippy::too_many_arguments)]
fn resolve<'a>(
    cfg: &Config,
    n_old: usize,
    old_table: Option<&BandTable>,
    new: &Signed,
    keys: &[u64],
    uf: &mut UnionFind,
    sig_of: &(impl Fn(u32) -> &'a [u32] + Sync),
    text_of: &(impl Fn(u32) -> &'a str + Sync),
) -> Result<DedupOutput> {
    let n_new = new.len();
    let total = n_old + n_new;
    if total > u32::MAX as usize {
        return Err(Error::invalid(
            "texts",
            "more than 4,294,967,295 documents in one index",
        ));
    }
    let first = n_old as u32;
    let active: Vec<bool> = new.empty.iter().map(|e| !e).collect();

    let t = std::time::Instant::now();
    let mut cands = lsh::candidate_pairs(keys, cfg.bands, first, &active);
    if let Some(table) = old_table {
        let cross = table.cross_pairs(keys, first, &active);
        cands.extend(cross);
        cands.par_sort_unstable();
        cands.dedup();
    }
    let t_cand = elapsed(t);

    let t = std::time::Instant::now();
    let mut docs: Vec<u32> = Vec::new();
    let sets = if cfg.verify == Verify::Exact {
        docs.extend(cands.iter().flat_map(|&p| {
            let (i, j) = lsh::unpack(p);
            [i, j]
        }));
        Some(Sets::build(cfg, &docs, total, text_of))
    } else {
        None
    };
    let similarity = |i: u32, j: u32| -> f64 {
        match &sets {
            Some(s) => jaccard_sorted(s.get(i), s.get(j)),
            None => estimate_jaccard(sig_of(i), sig_of(j)),
        }
    };
    let pairs: Vec<Pair> = cands
        .par_iter()
        .with_min_len(256)
        .filter_map(|&p| {
            let (i, j) = lsh::unpack(p);
            let jac = similarity(i, j);
            (jac >= cfg.threshold).then_some(Pair { i, j, jaccard: jac })
        })
        .collect();
    let t_verify = elapsed(t);

    let t = std::time::Instant::now();
    uf.grow(total);
    for p in &pairs {
        uf.union(p.i, p.j);
    }
    // the representative (kept document) of each component touching the batch
    let mut rep: rustc_hash::FxHashMap<u32, u32> = Default::default();
    for d in 0..n_new {
        let g = first + d as u32;
        let root = uf.find(g);
        let best = rep.entry(root).or_insert(root);
        if root >= first && cfg.keep == Keep::Longest {
            let cur = (*best - first) as usize;
            if new.lengths[d] > new.lengths[cur] {
                *best = g;
            }
        }
    }
    let mut out = DedupOutput {
        first_doc: n_old,
        keep: vec![true; n_new],
        cluster: vec![0; n_new],
        duplicate_of: vec![-1; n_new],
        similarity: vec![f64::NAN; n_new],
        empty: new.empty.clone(),
        n_candidates: cands.len(),
        ..Default::default()
    };
    let mut removed: Vec<(usize, u32)> = Vec::new();
    for d in 0..n_new {
        let g = first + d as u32;
        let r = rep[&uf.find(g)];
        out.cluster[d] = r as i64;
        if r != g {
            out.keep[d] = false;
            out.duplicate_of[d] = r as i64;
            removed.push((d, r));
        }
    }
    // similarity of each removed document to its kept one
    let extra: Vec<u32> = removed
        .iter()
        .map(|&(_, r)| r)
        .filter(|&r| r < first)
        .collect();
    let extra_sets = if cfg.verify == Verify::Exact && !extra.is_empty() {
        Some(Sets::build(cfg, &extra, total, text_of))
    } else {
        None
    };
    let sims: Vec<f64> = removed
        .par_iter()
        .map(|&(d, r)| {
            let g = first + d as u32;
            match (&sets, &extra_sets) {
                (Some(s), Some(x)) if r < first => jaccard_sorted(s.get(g), x.get(r)),
                _ => similarity(g, r),
            }
        })
        .collect();
    for (&(d, _), s) in removed.iter().zip(sims) {
        out.similarity[d] = s;
    }
    let mut clusters: Vec<i64> = out.cluster.clone();
    clusters.sort_unstable();
    clusters.dedup();
    out.n_clusters = clusters.len();
    out.pairs = pairs;
    out.seconds = vec![
        ("candidates", t_cand),
        ("verify", t_verify),
        ("cluster", elapsed(t)),
    ];
    Ok(out)
}

/// One-shot dedup of a signed corpus (`texts` must be the texts that were signed).
pub fn dedup<S: AsRef<str> + Sync>(
    cfg: &Config,
    texts: &[S],
    signed: &Signed,
) -> Result<DedupOutput> {
    if texts.len() != signed.len() {
        return Err(Error::invalid(
            "texts",
            "texts and signatures differ in length",
        ));
    }
    let p = cfg.num_perm();
    let t = std::time::Instant::now();
    let keys = lsh::band_keys(&signed.sigs, p, cfg.bands, cfg.rows);
    let t_keys = elapsed(t);
    let mut uf = UnionFind::new(texts.len());
    let sig_of = |d: u32| &signed.sigs[d as usize * p..(d as usize + 1) * p];
    let text_of = |d: u32| texts[d as usize].as_ref();
    let mut out = resolve(cfg, 0, None, signed, &keys, &mut uf, &sig_of, &text_of)?;
    out.seconds.insert(0, ("band_keys", t_keys));
    Ok(out)
}

/// A growing, persistent dedup index: every document added so far (text, signature, cluster).
#[derive(Clone, Debug)]
pub struct Index {
    pub cfg: Config,
    texts: Vec<String>,
    sigs: Vec<u32>,
    empty: Vec<bool>,
    kept: Vec<bool>,
    uf: UnionFind,
    table: BandTable,
}

const MAGIC: &[u8; 8] = b"TSDEDUPI";
pub const FORMAT_VERSION: u32 = 1;

impl Index {
    pub fn new(cfg: Config) -> Self {
        let bands = cfg.bands;
        Index {
            cfg,
            texts: Vec::new(),
            sigs: Vec::new(),
            empty: Vec::new(),
            kept: Vec::new(),
            uf: UnionFind::default(),
            table: BandTable::new(bands),
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    pub fn kept(&self) -> &[bool] {
        &self.kept
    }

    /// Dedups a new shard against everything added before and within itself, then adds it.
    pub fn add(&mut self, texts: Vec<String>, signed: Signed) -> Result<DedupOutput> {
        if texts.len() != signed.len() {
            return Err(Error::invalid(
                "texts",
                "texts and signatures differ in length",
            ));
        }
        let p = self.cfg.num_perm();
        let n_old = self.len();
        let keys = lsh::band_keys(&signed.sigs, p, self.cfg.bands, self.cfg.rows);
        let out = {
            let (old_texts, old_sigs) = (&self.texts, &self.sigs);
            let sig_of = |d: u32| {
                let d = d as usize;
                if d < n_old {
                    &old_sigs[d * p..(d + 1) * p]
                } else {
                    &signed.sigs[(d - n_old) * p..(d - n_old + 1) * p]
                }
            };
            let text_of = |d: u32| {
                let d = d as usize;
                if d < n_old {
                    old_texts[d].as_str()
                } else {
                    texts[d - n_old].as_str()
                }
            };
            resolve(
                &self.cfg,
                n_old,
                Some(&self.table),
                &signed,
                &keys,
                &mut self.uf,
                &sig_of,
                &text_of,
            )?
        };
        let active: Vec<bool> = signed.empty.iter().map(|e| !e).collect();
        self.table.insert(&keys, n_old as u32, &active);
        self.kept.extend_from_slice(&out.keep);
        self.empty.extend_from_slice(&signed.empty);
        self.sigs.extend_from_slice(&signed.sigs);
        self.texts.extend(texts);
        Ok(out)
    }

    /// Indexed documents whose similarity to `text` is at least the threshold, best first.
    pub fn query(&self, text: &str) -> Vec<(u32, f64)> {
        let p = self.cfg.num_perm();
        let signed = self.cfg.sign(&[text]);
        if signed.empty[0] {
            return Vec::new();
        }
        let keys = lsh::band_keys(&signed.sigs, p, self.cfg.bands, self.cfg.rows);
        let cands = self.table.query(&keys);
        let sh = &self.cfg.hasher.shingler;
        let mine = sh.hash_set(text, &mut Scratch::default());
        let mut hits: Vec<(u32, f64)> = cands
            .par_iter()
            .map_init(Scratch::default, |s, &d| {
                let j = match self.cfg.verify {
                    Verify::Exact => {
                        jaccard_sorted(&mine, &sh.hash_set(&self.texts[d as usize], s))
                    }
                    Verify::Minhash => estimate_jaccard(
                        &signed.sigs,
                        &self.sigs[d as usize * p..(d as usize + 1) * p],
                    ),
                };
                (d, j)
            })
            .filter(|&(_, j)| j >= self.cfg.threshold)
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }

    /// The index as bytes: magic, format version, payload, checksum (`hash64` of the payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.cfg;
        let mut w = Vec::new();
        w.extend_from_slice(&c.threshold.to_le_bytes());
        put_u64(&mut w, c.num_perm() as u64);
        put_u64(&mut w, c.hasher.seed);
        w.push(match c.hasher.scheme {
            Scheme::Native => 0,
            Scheme::DatasketchLegacy => 1,
            Scheme::DatasketchAffine32 => 2,
        });
        let (kind, k) = match c.hasher.shingler.kind {
            ShingleKind::Char(k) => (0u8, k),
            ShingleKind::Word(k) => (1u8, k),
        };
        w.push(kind);
        put_u64(&mut w, k as u64);
        w.push(match c.hasher.shingler.normalize {
            Normalize::None => 0,
            Normalize::Default => 1,
            Normalize::Nfkc => 2,
        });
        put_u64(&mut w, c.bands as u64);
        put_u64(&mut w, c.rows as u64);
        w.push((c.verify == Verify::Minhash) as u8);
        w.push((c.keep == Keep::Longest) as u8);
        put_u64(&mut w, self.len() as u64);
        for t in &self.texts {
            put_u64(&mut w, t.len() as u64);
            w.extend_from_slice(t.as_bytes());
        }
        for v in &self.sigs {
            w.extend_from_slice(&v.to_le_bytes());
        }
        w.extend(self.empty.iter().map(|&b| b as u8));
        w.extend(self.kept.iter().map(|&b| b as u8));
        for v in &self.uf.parent {
            w.extend_from_slice(&v.to_le_bytes());
        }
        let mut out = Vec::with_capacity(w.len() + 28);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        put_u64(&mut out, w.len() as u64);
        out.extend_from_slice(&w);
        put_u64(&mut out, crate::shingle::hash64(&w));
        out
    }

    /// Reads what [`Index::to_bytes`] wrote; anything else is refused with [`Error::Corrupt`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |m: &str| Error::Corrupt(m.to_string());
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a textsieve dedup index (bad magic bytes)"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(Error::Corrupt(format!(
                "dedup index format version {version}; this textsieve reads version {FORMAT_VERSION}"
            )));
        }
        let mut r = Reader { b: &bytes[12..] };
        let n = r.u64()? as usize;
        let payload = r.take(n)?;
        let sum = r.u64()?;
        if !r.b.is_empty() {
            return Err(corrupt("trailing bytes after the checksum"));
        }
        if crate::shingle::hash64(payload) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader { b: payload };
        let threshold = f64::from_le_bytes(r.array::<8>()?);
        let num_perm = r.u64()? as usize;
        let seed = r.u64()?;
        let scheme = ["native", "datasketch-legacy", "datasketch-affine32"]
            .get(r.u8()? as usize)
            .ok_or_else(|| corrupt("unknown scheme"))?;
        let shingle = ["char", "word"]
            .get(r.u8()? as usize)
            .ok_or_else(|| corrupt("unknown shingle kind"))?;
        let k = r.u64()? as usize;
        let normalize = ["none", "default", "nfkc"]
            .get(r.u8()? as usize)
            .ok_or_else(|| corrupt("unknown normalization"))?;
        let bands = r.u64()? as usize;
        let rows = r.u64()? as usize;
        let verify = [Verify::Exact, Verify::Minhash]
            .get(r.u8()? as usize)
            .ok_or_else(|| corrupt("unknown verification"))?
            .name();
        let keep = [Keep::First, Keep::Longest]
            .get(r.u8()? as usize)
            .ok_or_else(|| corrupt("unknown keep rule"))?
            .name();
        let cfg = Config::new(
            threshold,
            num_perm,
            seed,
            scheme,
            shingle,
            k,
            normalize,
            Some(bands),
            Some(rows),
            verify,
            keep,
        )
        .map_err(|e| Error::Corrupt(format!("bad settings: {e}")))?;
        let n_docs = r.u64()? as usize;
        if n_docs > payload.len() {
            return Err(corrupt("document count larger than the file"));
        }
        let mut texts = Vec::with_capacity(n_docs);
        for _ in 0..n_docs {
            let len = r.u64()? as usize;
            let t = std::str::from_utf8(r.take(len)?).map_err(|_| corrupt("text is not UTF-8"))?;
            texts.push(t.to_owned());
        }
        let n_sig = n_docs
            .checked_mul(num_perm)
            .filter(|&x| x.saturating_mul(4) <= r.b.len())
            .ok_or_else(|| corrupt("signatures truncated"))?;
        let sigs: Vec<u32> = r
            .take(n_sig * 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let empty: Vec<bool> = r.take(n_docs)?.iter().map(|&b| b != 0).collect();
        let kept: Vec<bool> = r.take(n_docs)?.iter().map(|&b| b != 0).collect();
        let parent: Vec<u32> = r
            .take(n_docs * 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if !r.b.is_empty() {
            return Err(corrupt("unexpected bytes at the end of the payload"));
        }
        let uf = UnionFind::from_parents(parent)?;
        let keys = lsh::band_keys(&sigs, num_perm, cfg.bands, cfg.rows);
        let mut table = BandTable::new(cfg.bands);
        let active: Vec<bool> = empty.iter().map(|e| !e).collect();
        table.insert(&keys, 0, &active);
        Ok(Index {
            cfg,
            texts,
            sigs,
            empty,
            kept,
            uf,
            table,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keep: &str) -> Config {
        Config::new(
            0.7, 128, 1, "native", "char", 5, "default", None, None, "exact", keep,
        )
        .unwrap()
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
        let c = cfg("first");
        let out = dedup(&c, &texts, &c.sign(&texts)).unwrap();
        assert_eq!(out.keep, vec![true, true, true, false, true, true]);
        assert_eq!(out.duplicate_of, vec![-1, -1, -1, 0, -1, -1]);
        assert_eq!(out.empty, vec![false, true, false, false, true, false]);
        assert_eq!(out.pairs.len(), 1);
        assert!(out.pairs.iter().all(|p| p.jaccard >= 0.7 && p.i < p.j));
        assert_eq!(out.n_clusters, 5);
        let c = cfg("longest");
        let out = dedup(&c, &texts, &c.sign(&texts)).unwrap();
        assert_eq!(out.keep, vec![false, true, true, true, true, true]);
        assert_eq!(out.cluster[0], 3);
    }

    #[test]
    fn index_matches_one_shot_and_round_trips() {
        let texts = corpus();
        let c = cfg("first");
        let whole = dedup(&c, &texts, &c.sign(&texts)).unwrap();
        let mut idx = Index::new(c.clone());
        let a = idx.add(texts[..3].to_vec(), c.sign(&texts[..3])).unwrap();
        let b = idx.add(texts[3..].to_vec(), c.sign(&texts[3..])).unwrap();
        assert_eq!([a.keep, b.keep].concat(), whole.keep);
        assert_eq!([a.cluster, b.cluster].concat(), whole.cluster);
        let bytes = idx.to_bytes();
        let back = Index::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.query(&texts[0]).first().map(|h| h.0), Some(0));
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(matches!(Index::from_bytes(&bad), Err(Error::Corrupt(_))));
        assert!(Index::from_bytes(b"hello world, not an index").is_err());
        assert!(Index::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn components_roots_are_smallest_members() {
        let (nodes, roots) = components(&[9, 4, 30], &[4, 2, 31]).unwrap();
        assert_eq!(nodes, vec![2, 4, 9, 30, 31]);
        assert_eq!(roots, vec![2, 2, 2, 30, 30]);
        assert!(components(&[1], &[]).is_err());
        assert_eq!(components(&[], &[]).unwrap(), (vec![], vec![]));
    }
}
