//! Bindings of the dedup core (shingle, minhash, lsh, cluster): conversion, GIL release, error
//! mapping. No algorithm lives here.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::convert::{arg, extract_text, extract_texts, Arrays, Named, Surrogates};
use super::errors::invalid_argument;
use crate::cluster::{self, Cluster, Config, DedupOutput, Index, Keep, Run, Verify};
use crate::greedy::Decision;
use crate::lsh;
use crate::minhash::{MinHasher, Scheme};
use crate::parallel::with_threads;
use crate::reader::Lines;
use crate::shingle::{self, Normalize, Scratch, ShingleKind, Shingler};
use crate::store::{Store, DEFAULT_MEMORY_LIMIT};

/// Signatures as a 2-D NumPy array: uint64 for the legacy scheme (as datasketch), else uint32.
fn sig_array<'py>(
    py: Python<'py>,
    sigs: Vec<u32>,
    n: usize,
    p: usize,
    scheme: Scheme,
) -> PyResult<Bound<'py, PyAny>> {
    let err = |e: numpy::ndarray::ShapeError| PyValueError::new_err(e.to_string());
    Ok(if scheme == Scheme::DatasketchLegacy {
        let wide: Vec<u64> = sigs.into_iter().map(u64::from).collect();
        Array2::from_shape_vec((n, p), wide)
            .map_err(err)?
            .into_pyarray(py)
            .into_any()
    } else {
        Array2::from_shape_vec((n, p), sigs)
            .map_err(err)?
            .into_pyarray(py)
            .into_any()
    })
}

/// A MinHash configuration (scheme, permutations, shingling).
#[pyclass(frozen, module = "textsieve._core")]
pub struct MinHasherCore {
    inner: MinHasher,
}

#[pymethods]
impl MinHasherCore {
    #[new]
    #[pyo3(signature = (num_perm, seed, scheme, shingle, k, normalize))]
    fn new(
        #[pyo3(from_py_with = arg::num_perm)] num_perm: usize,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        scheme: Named<Scheme>,
        shingle: &str,
        #[pyo3(from_py_with = arg::k)] k: usize,
        normalize: Named<Normalize>,
    ) -> PyResult<Self> {
        let shingler =
            ShingleKind::parse(shingle, k).and_then(|kind| Shingler::typed(kind, normalize.0))?;
        Ok(MinHasherCore {
            inner: MinHasher::new(num_perm, seed, scheme.0, shingler)?,
        })
    }

    /// Signatures of many texts, shape (n, num_perm).
    #[pyo3(signature = (texts, num_threads=None, errors="strict"))]
    fn signatures<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
        errors: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let mh = &self.inner;
        let sigs = py.detach(|| with_threads(num_threads, || mh.signatures(&texts)))??;
        sig_array(py, sigs, texts.len(), mh.num_perm, mh.scheme)
    }

    /// Native signatures from `hash64` shingle hashes (`offsets[d]..offsets[d+1]` per document).
    #[pyo3(signature = (hashes, offsets, num_threads=None))]
    fn signatures_from_hashes<'py>(
        &self,
        py: Python<'py>,
        hashes: numpy::PyReadonlyArray1<'py, u64>,
        offsets: numpy::PyReadonlyArray1<'py, i64>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = hashes.as_slice()?;
        let offs: Vec<usize> = offsets
            .as_array()
            .iter()
            .map(|&o| {
                usize::try_from(o).map_err(|_| invalid_argument("offsets", "negative offset"))
            })
            .collect::<PyResult<_>>()?;
        let mh = &self.inner;
        let sigs =
            py.detach(|| with_threads(num_threads, || mh.signatures_from_hashes(h, &offs)))??;
        sig_array(
            py,
            sigs,
            offs.len().saturating_sub(1),
            mh.num_perm,
            mh.scheme,
        )
    }

    /// The permutation parameters (a, b) as uint64 arrays.
    fn permutations<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>) {
        let (a, b) = self.inner.permutations();
        (a.into_pyarray(py), b.into_pyarray(py))
    }

    #[getter]
    fn num_perm(&self) -> usize {
        self.inner.num_perm
    }
}

/// The distinct shingles of a text, sorted.
#[pyfunction]
#[pyo3(signature = (text, k, shingle, normalize, errors="strict"))]
fn shingle_strings(
    text: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = arg::k)] k: usize,
    shingle: &str,
    normalize: &str,
    errors: &str,
) -> PyResult<Vec<String>> {
    let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
    let sh = Shingler::new(shingle, k, normalize)?;
    Ok(sh.strings(&text))
}

/// The distinct `hash64` values of a text's shingles, sorted.
#[pyfunction]
#[pyo3(signature = (text, k, shingle, normalize, errors="strict"))]
fn shingle_hashes<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = arg::k)] k: usize,
    shingle: &str,
    normalize: &str,
    errors: &str,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
    let sh = Shingler::new(shingle, k, normalize)?;
    Ok(sh.hash_set(&text, &mut Scratch::default()).into_pyarray(py))
}

/// Exact Jaccard similarity of the shingle sets of two texts.
#[pyfunction]
#[pyo3(signature = (a, b, k, shingle, normalize, errors="strict"))]
fn jaccard_texts(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = arg::k)] k: usize,
    shingle: &str,
    normalize: &str,
    errors: &str,
) -> PyResult<f64> {
    let s = Surrogates::parse(errors)?;
    let (a, b) = (extract_text(a, "a", s)?, extract_text(b, "b", s)?);
    let sh = Shingler::new(shingle, k, normalize)?;
    let mut scratch = Scratch::default();
    let (x, y) = (sh.hash_set(&a, &mut scratch), sh.hash_set(&b, &mut scratch));
    Ok(shingle::jaccard_sorted(&x, &y))
}

/// Exact Jaccard similarity of each pair `(texts[i[n]], texts[j[n]])`, in parallel.
#[pyfunction]
#[pyo3(signature = (texts, i, j, k, shingle, normalize, num_threads=None, errors="strict"))]
#[allow(clippy::too_many_arguments)]
fn jaccard_pairs<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    i: numpy::PyReadonlyArray1<'py, u32>,
    j: numpy::PyReadonlyArray1<'py, u32>,
    #[pyo3(from_py_with = arg::k)] k: usize,
    shingle: &str,
    normalize: &str,
    #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    errors: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
    let sh = Shingler::new(shingle, k, normalize)?;
    let (i, j) = (i.as_slice()?, j.as_slice()?);
    let out =
        py.detach(|| with_threads(num_threads, || shingle::jaccard_pairs(&sh, &texts, i, j)))??;
    Ok(out.into_pyarray(py))
}

/// Connected components of the edges `(i[n], j[n])`: `(nodes, roots)`, roots being the
/// smallest number of each component.
#[pyfunction]
fn connected_components<'py>(
    py: Python<'py>,
    i: numpy::PyReadonlyArray1<'py, u64>,
    j: numpy::PyReadonlyArray1<'py, u64>,
) -> PyResult<Arrays<'py, PyArray1<u64>, PyArray1<u64>>> {
    let (i, j) = (i.as_slice()?, j.as_slice()?);
    let (nodes, roots) =
        py.detach(|| with_threads(None, || cluster::components_of_edges(i, j)))??;
    Ok((nodes.into_pyarray(py), roots.into_pyarray(py)))
}

/// The greedy rule over verified pairs: per node (sorted `nodes`, decision order `rank`), the
/// kept document it duplicates (-1 when kept) and the similarity.
#[pyfunction]
fn greedy_pairs<'py>(
    py: Python<'py>,
    i: numpy::PyReadonlyArray1<'py, u64>,
    j: numpy::PyReadonlyArray1<'py, u64>,
    jaccard: numpy::PyReadonlyArray1<'py, f64>,
    nodes: numpy::PyReadonlyArray1<'py, u64>,
    rank: numpy::PyReadonlyArray1<'py, u64>,
    threshold: f64,
) -> PyResult<Arrays<'py, PyArray1<i64>, PyArray1<f64>>> {
    let (i, j, x) = (i.as_slice()?, j.as_slice()?, jaccard.as_slice()?);
    let (nodes, rank) = (nodes.as_slice()?, rank.as_slice()?);
    let (dup, sim) = py.detach(|| crate::greedy::greedy_pairs(i, j, x, nodes, rank, threshold))?;
    Ok((dup.into_pyarray(py), sim.into_pyarray(py)))
}

/// textsieve's 64-bit hash of a byte string.
#[pyfunction]
fn hash64(data: &[u8]) -> u64 {
    shingle::hash64(data)
}

/// datasketch's `_optimal_param`: (bands, rows).
#[pyfunction]
#[pyo3(signature = (threshold, num_perm, false_positive_weight=0.5, false_negative_weight=0.5))]
fn optimal_params(
    threshold: f64,
    #[pyo3(from_py_with = arg::num_perm)] num_perm: usize,
    false_positive_weight: f64,
    false_negative_weight: f64,
) -> PyResult<(usize, usize)> {
    Ok(lsh::optimal_params(
        threshold,
        num_perm,
        false_positive_weight,
        false_negative_weight,
    )?)
}

/// textsieve's default (bands, rows): the most rows reaching `min_recall` at the threshold.
#[pyfunction]
#[pyo3(signature = (threshold, num_perm, min_recall=cluster::MIN_RECALL))]
fn recall_params(threshold: f64, num_perm: usize, min_recall: f64) -> PyResult<(usize, usize)> {
    Ok(lsh::recall_params(threshold, num_perm, min_recall)?)
}

/// Band keys of signatures (row-major u32 values, as from `MinHasherCore.signatures`).
#[pyfunction]
fn band_keys<'py>(
    py: Python<'py>,
    sigs: numpy::PyReadonlyArray2<'py, u32>,
    #[pyo3(from_py_with = arg::bands)] bands: usize,
    #[pyo3(from_py_with = arg::rows)] rows: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let view = sigs.as_array();
    let (n, p) = view.dim();
    if bands == 0 || rows == 0 || bands.checked_mul(rows).is_none_or(|used| used > p) {
        return Err(invalid_argument(
            "bands",
            format!(
                "bands * rows must be between 1 and num_perm={p}; got bands={bands}, rows={rows}"
            ),
        ));
    }
    let flat: Vec<u32> = view.iter().copied().collect();
    let keys = py.detach(|| with_threads(None, || lsh::band_keys(&flat, p, bands, rows)))?;
    Array2::from_shape_vec((n, bands), keys)
        .map(|a| a.into_pyarray(py).into_any())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The settings of a dedup (validated once).
#[pyclass(frozen, module = "textsieve._core")]
pub struct DedupConfig {
    pub(crate) inner: Config,
}

#[pymethods]
impl DedupConfig {
    #[new]
    #[pyo3(signature = (threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep, cluster))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        threshold: f64,
        #[pyo3(from_py_with = arg::num_perm)] num_perm: usize,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        scheme: Named<Scheme>,
        shingle: &str,
        #[pyo3(from_py_with = arg::k)] k: usize,
        normalize: Named<Normalize>,
        #[pyo3(from_py_with = arg::bands)] bands: Option<usize>,
        #[pyo3(from_py_with = arg::rows)] rows: Option<usize>,
        verify: Named<Verify>,
        keep: Named<Keep>,
        cluster: Named<Cluster>,
    ) -> PyResult<Self> {
        let shingler =
            ShingleKind::parse(shingle, k).and_then(|kind| Shingler::typed(kind, normalize.0))?;
        let inner = Config::new(
            threshold, num_perm, seed, scheme.0, shingler, bands, rows, verify.0, keep.0, cluster.0,
        )?;
        Ok(DedupConfig { inner })
    }

    #[getter]
    fn bands(&self) -> usize {
        self.inner.bands
    }

    #[getter]
    fn rows(&self) -> usize {
        self.inner.rows
    }
}

fn output_dict<'py>(py: Python<'py>, out: DedupOutput) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let (mut pi, mut pj, mut pjac) = (Vec::new(), Vec::new(), Vec::new());
    for p in &out.pairs {
        pi.push(p.i as i64);
        pj.push(p.j as i64);
        pjac.push(p.jaccard);
    }
    d.set_item("first_doc", out.first_doc)?;
    d.set_item("keep", out.keep.into_pyarray(py))?;
    d.set_item("cluster", out.cluster.into_pyarray(py))?;
    d.set_item("duplicate_of", out.duplicate_of.into_pyarray(py))?;
    d.set_item("similarity", out.similarity.into_pyarray(py))?;
    d.set_item("examined", out.examined.into_pyarray(py))?;
    d.set_item("empty", out.empty.into_pyarray(py))?;
    d.set_item("pair_i", pi.into_pyarray(py))?;
    d.set_item("pair_j", pj.into_pyarray(py))?;
    d.set_item("pair_jaccard", pjac.into_pyarray(py))?;
    d.set_item("n_candidates", out.n_candidates)?;
    d.set_item("n_clusters", out.n_clusters)?;
    d.set_item("stored_bytes", out.stored_bytes)?;
    d.set_item("spilled", out.spilled)?;
    let secs = PyDict::new(py);
    for (k, v) in out.seconds {
        secs.set_item(k, v)?;
    }
    d.set_item("seconds", secs)?;
    Ok(d)
}

/// One dedup run: texts are fed in chunks (signed, and decided when the rule allows), then
/// finished. Texts are kept in memory up to a limit, then in an unlinked temporary file in
/// `spill_dir` (default: the system's temporary folder).
#[pyclass(module = "textsieve._core")]
pub struct DedupRun {
    inner: Run,
}

fn decisions_dict<'py>(py: Python<'py>, d: &[Decision]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let dup: Vec<i64> = d
        .iter()
        .map(|x| x.duplicate_of.map_or(-1, i64::from))
        .collect();
    let sim: Vec<f64> = d.iter().map(|x| x.similarity).collect();
    let examined: Vec<u32> = d.iter().map(|x| x.examined).collect();
    out.set_item("duplicate_of", dup.into_pyarray(py))?;
    out.set_item("similarity", sim.into_pyarray(py))?;
    out.set_item("examined", examined.into_pyarray(py))?;
    Ok(out)
}

#[pymethods]
impl DedupRun {
    #[new]
    #[pyo3(signature = (config, all_pairs=false, spill_dir=None, samples=0))]
    fn new(
        config: &DedupConfig,
        all_pairs: bool,
        spill_dir: Option<std::path::PathBuf>,
        #[pyo3(from_py_with = arg::samples)] samples: u8,
    ) -> Self {
        let dir = spill_dir.unwrap_or_else(std::env::temp_dir);
        let store = Store::spilling(&dir, DEFAULT_MEMORY_LIMIT);
        DedupRun {
            inner: Run::new(config.inner.clone(), all_pairs, store, samples),
        }
    }

    /// Feeds a chunk of texts (a list); returns (documents, UTF-8 bytes, decisions). When the
    /// run decides as it goes, the decisions (a dict of arrays) are those of the chunk fed before
    /// this one (empty after the first call; `flush` gives the last chunk's); else None. Errors
    /// name the position in the whole corpus.
    #[pyo3(signature = (texts, num_threads=None, errors="strict"))]
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        texts: &Bound<'py, PyList>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
        errors: &str,
    ) -> PyResult<(usize, usize, Option<Bound<'py, PyDict>>)> {
        let surrogates = Surrogates::parse(errors)?;
        let offset = self.inner.len();
        let chunk = texts
            .iter()
            .enumerate()
            .map(|(i, t)| extract_text(&t, &format!("texts[{}]", offset + i), surrogates))
            .collect::<PyResult<Vec<String>>>()?;
        self.feed_texts(py, chunk, None, num_threads)
    }

    /// Feeds the documents of a sealed chunk from the reader (their texts move into the run);
    /// returns as `feed`.
    #[pyo3(signature = (chunk, num_threads=None))]
    fn feed_chunk<'py>(
        &mut self,
        py: Python<'py>,
        mut chunk: PyRefMut<'py, super::reader::ChunkCore>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<(usize, usize, Option<Bound<'py, PyDict>>)> {
        let (texts, at) = chunk.inner.take_texts();
        let source = chunk.inner.source.clone();
        let lines = source.as_ref().map(|s| (s, at.as_slice()));
        self.feed_texts(py, texts, lines, num_threads)
    }

    /// Says that about `docs` documents will be fed in all: a hint that sizes the kept
    /// documents' tables once (the decisions do not depend on it).
    fn expect(&mut self, docs: usize) {
        self.inner.expect(docs);
    }

    /// Decides the next block when the rule decides after every document was fed
    /// (`keep="longest"`, components); returns (work done, work in all). Between calls Ctrl-C
    /// works.
    #[pyo3(signature = (num_threads=None))]
    fn step(
        &mut self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<(usize, usize)> {
        let run = &mut self.inner;
        Ok(py.detach(|| with_threads(num_threads, || run.step()))?)
    }

    /// The decisions of the last chunk fed, when the run decides as it goes.
    #[pyo3(signature = (num_threads=None))]
    fn flush<'py>(
        &mut self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let run = &mut self.inner;
        let decided = py.detach(|| with_threads(num_threads, || run.flush()))??;
        py.check_signals()?;
        decisions_dict(py, &decided)
    }

    /// Whether chunks are decided as they are fed.
    #[getter]
    fn streaming(&self) -> bool {
        self.inner.streaming()
    }

    /// The stored text of a document: kept documents always, up to `samples` removed ones per
    /// kept document when the run decides as it goes, every one otherwise.
    fn text(&self, doc: u32) -> Option<String> {
        self.inner.text(doc)
    }

    /// The decisions for every document fed, as a dict of arrays.
    #[pyo3(signature = (num_threads=None))]
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let run = &mut self.inner;
        let out = py.detach(|| with_threads(num_threads, || run.finish()))??;
        py.check_signals()?;
        output_dict(py, out)
    }
}

impl DedupRun {
    fn feed_texts<'py>(
        &mut self,
        py: Python<'py>,
        chunk: Vec<String>,
        lines: Option<Lines<'_>>,
        num_threads: Option<usize>,
    ) -> PyResult<(usize, usize, Option<Bound<'py, PyDict>>)> {
        let n_bytes = chunk.iter().map(String::len).sum();
        let n = chunk.len();
        let run = &mut self.inner;
        let decided = py.detach(|| with_threads(num_threads, || run.feed_from(chunk, lines)))??;
        // a Ctrl-C during the work surfaces here, before any NumPy array is made
        py.check_signals()?;
        let d = decided.map(|d| decisions_dict(py, &d)).transpose()?;
        Ok((n, n_bytes, d))
    }
}

/// The persistent dedup index.
#[pyclass(module = "textsieve._core")]
pub struct IndexCore {
    inner: Index,
}

#[pymethods]
impl IndexCore {
    #[new]
    fn new(config: &DedupConfig) -> PyResult<Self> {
        Ok(IndexCore {
            inner: Index::new(config.inner.clone())?,
        })
    }

    /// Dedups a shard against the index and adds it; the result as a dict of arrays.
    #[pyo3(signature = (texts, num_threads=None, errors="strict"))]
    fn add<'py>(
        &mut self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
        errors: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let idx = &mut self.inner;
        let out = py.detach(|| with_threads(num_threads, || idx.add(&texts)))??;
        output_dict(py, out)
    }

    /// Indexed documents at or above the threshold: [(number, jaccard)], best first.
    #[pyo3(signature = (text, errors="strict"))]
    fn query(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        errors: &str,
    ) -> PyResult<Vec<(u32, f64)>> {
        let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
        let idx = &self.inner;
        Ok(py.detach(|| with_threads(None, || idx.query(&text)))?)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let idx = &self.inner;
        let bytes = py.detach(|| idx.to_bytes());
        PyBytes::new(py, &bytes)
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = py.detach(|| with_threads(None, || Index::from_bytes(data)))??;
        Ok(IndexCore { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The settings, as keyword arguments for `DedupConfig`.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.cfg;
        let d = PyDict::new(py);
        d.set_item("threshold", c.threshold)?;
        d.set_item("num_perm", c.num_perm())?;
        d.set_item("seed", c.hasher.seed)?;
        d.set_item("scheme", c.hasher.scheme.name())?;
        let (kind, k) = match c.hasher.shingler.kind {
            shingle::ShingleKind::Char(k) => ("char", k),
            shingle::ShingleKind::Word(k) => ("word", k),
        };
        d.set_item("shingle", kind)?;
        d.set_item("k", k)?;
        d.set_item("normalize", c.hasher.shingler.normalize.name())?;
        d.set_item("bands", c.bands)?;
        d.set_item("rows", c.rows)?;
        d.set_item("verify", c.verify.name())?;
        d.set_item("keep", c.keep.name())?;
        d.set_item("cluster", c.cluster.name())?;
        Ok(d)
    }

    /// The kept documents: `[(number, text)]` in number order.
    fn kept_documents(&self) -> Vec<(u32, String)> {
        self.inner.kept_documents()
    }

    /// Which indexed documents were kept.
    fn kept<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.inner.kept().into_pyarray(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MinHasherCore>()?;
    m.add_class::<DedupConfig>()?;
    m.add_class::<DedupRun>()?;
    m.add_class::<IndexCore>()?;
    m.add_function(wrap_pyfunction!(shingle_strings, m)?)?;
    m.add_function(wrap_pyfunction!(shingle_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(jaccard_texts, m)?)?;
    m.add_function(wrap_pyfunction!(jaccard_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(connected_components, m)?)?;
    m.add_function(wrap_pyfunction!(hash64, m)?)?;
    m.add_function(wrap_pyfunction!(greedy_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(optimal_params, m)?)?;
    m.add_function(wrap_pyfunction!(recall_params, m)?)?;
    m.add_function(wrap_pyfunction!(band_keys, m)?)?;
    Ok(())
}
