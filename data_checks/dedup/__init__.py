"""The near-duplicate gate: MinHash + LSH over word 5-grams, every candidate pair verified exactly.

Text is normalised (lower-cased; every run of characters that are not letters or digits, underscore
included, folded to one space; stripped) and cut into word n-grams (`ngram`, 5 by default). A document
with fewer than `ngram` words is one shingle: its whole normalised text. A document with no words at
all (empty, or punctuation only) has no shingles and is never a duplicate of anything; the template
gate reports such records.

One module per job, in the order a run uses them:

- `config`: `DedupGateConfig` (`checks.dedup`) and `DedupResult`;
- `words`: normalisation, the reference shingle sets, and the NumPy word splitter;
- `store`: the texts of one source as one UTF-8 buffer (what the splitter and the children read);
- `hashing`: 64-bit word, shingle and whole-text hashes from the word spans (no shingle strings);
- `minhash`: the minimum over `num_perm` multiplicative permutations of the shingle hashes;
- `lsh`: the band choice (`choose_bands`: 21 bands x 6 rows for 0.8/128, so a pair at the threshold
  becomes a candidate with probability >= 0.99; datasketch's own 9 x 13 recalls about half the pairs
  at J 0.80-0.85), band keys, candidate pairs;
- `sketching`: a source's texts sketched in batches, on forked children while the records still come;
- `workers`: the forked children (Linux, large inputs), which inherit the texts and send back results;
- `verify`: the Jaccard of each candidate pair's shingle sets, so no reported pair is below the threshold;
- `clusters`: exact-duplicate groups (identical normalised text, grouped first), connected components
  of the verified pairs, the records a clean copy drops;
- `gate`: `NearDuplicateFinder` (fed one text at a time, as the gate pipeline does) and
  `find_near_duplicates`, which run the stages, and the contamination check;
- `spec`: the gate as the registry (`data_checks.registry`) knows it: each record's text to a finder,
  the summary line and the HTML section.

The hashes are not datasketch's (SHA-1 and an affine permutation): signatures never leave the gate and
every candidate is verified, so what matters is that signature agreement estimates the Jaccard
similarity without bias and that the bands recall the pairs at the threshold;
tests/data_checks/test_dedup_statistics.py checks both against brute force. Verification compares
the pair's sets of 64-bit shingle hashes: the exact Jaccard of the shingle sets unless two distinct
shingles of the pair share a hash (probability about 2**-64 per pair of shingles).
"""

from data_checks.dedup.clusters import dropped_indices, keep_indices
from data_checks.dedup.config import MAX_LISTED_CLUSTERS, MAX_LISTED_PAIRS, DedupGateConfig, DedupResult
from data_checks.dedup.gate import NearDuplicateFinder, find_near_duplicates
from data_checks.dedup.lsh import TARGET_COLLISION, choose_bands, collision_probability
from data_checks.dedup.minhash import signatures
from data_checks.dedup.words import normalize, shingles

__all__ = ["MAX_LISTED_CLUSTERS", "MAX_LISTED_PAIRS", "TARGET_COLLISION", "DedupGateConfig", "DedupResult",
           "NearDuplicateFinder",
           "choose_bands", "collision_probability", "dropped_indices", "find_near_duplicates", "keep_indices",
           "normalize", "shingles", "signatures"]
