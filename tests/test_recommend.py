"""`leptonhub.apps.recommend`: the protocol's metrics against hand-computed values, the split's properties, learning a
generated taste task above popularity, the fallbacks for unknown users and items, and bad input."""
import json, math
import numpy as np, pandas as pd, pytest, scipy.sparse as sp, torch
from hypothesis import given, settings, strategies as st
from leptonhub.core import InputError, NotFoundError
from leptonhub.apps.recommend import (BiasedMF, Recommender, ease, evaluate, evaluate_files, item_texts, item_vectors, movielens_tiny,
                                      ndcg_at_k, precision_at_k, ranking_metrics, read_items, read_ratings, recall_at_k, rmse,
                                      stratified_split, taste_clusters, check_ratings)

torch.set_num_threads(1)
L2 = 1 / np.log2(np.arange(2, 12))          # the discounts 1/log2(i+1), i = 1…10

# ------------------------------------------------------------------ metrics, by hand

def test_ndcg_hand_computed():
    # hits at ranks 1 and 3 of 5, three relevant items: DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) + 1/log2(4)
    assert ndcg_at_k([7, 1, 8, 2, 3], {7, 8, 9}, 5) == pytest.approx(1.5 / (1 + 0.6309297535714575 + 0.5), abs=1e-12)
    assert ndcg_at_k(list('abcd'), set('bde'), 4) == pytest.approx(0.49818, abs=1e-5)
    assert ndcg_at_k(list('bdea'), set('bde'), 4) == 1.0
    assert ndcg_at_k(list('abc'), {'z'}, 10) == 0.0
    # k cuts the list: a hit at rank 3 counts for k = 3, not for k = 2
    assert ndcg_at_k(list('abc'), {'c'}, 2) == 0.0
    assert ndcg_at_k(list('abc'), {'c'}, 3) == pytest.approx(0.5)
    # more relevant items than k: the ideal DCG stops at k
    assert ndcg_at_k(list(range(10)), set(range(20)), 10) == pytest.approx(1.0)
    assert math.isnan(ndcg_at_k([1], set(), 10))

def test_precision_recall_hand_computed():
    assert precision_at_k([7, 1, 8, 2, 3], {7, 8, 9}, 5) == pytest.approx(2 / 5)
    assert recall_at_k([7, 1, 8, 2, 3], {7, 8, 9}, 5) == pytest.approx(2 / 3)
    assert precision_at_k([7], {7}, 10) == pytest.approx(0.1)            # out of k, even for a short list
    assert recall_at_k([1, 2], {2, 3, 4, 5}, 1) == 0.0

def test_ranking_metrics_average_only_users_with_test_items():
    m = ranking_metrics({'u': [1, 2, 3], 'v': [4, 5, 6]}, {'u': {2}, 'v': {9, 4}, 'w': set()}, k=3)
    assert m['users'] == 2
    assert m['ndcg@3'] == pytest.approx((L2[1] + 1 / (1 + L2[1])) / 2)
    assert m['precision@3'] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m['recall@3'] == pytest.approx((1 + 0.5) / 2)
    m = ranking_metrics({}, {'x': {1}}, k=10)                                # a user without a ranking scores 0
    assert (m['ndcg@10'], m['recall@10']) == (0.0, 0.0)
    with pytest.raises(InputError, match='no user has a relevant'): ranking_metrics({'u': [1]}, {'u': set()})

def test_rmse():
    assert rmse([1, 2, 3, 4], [1, 2, 3, 6]) == pytest.approx(1.0)
    with pytest.raises(InputError): rmse([1, 2], [1])

# ------------------------------------------------------------------ the split

@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=25), st.integers(0, 2**31 - 1))
def test_split_per_user_75_25(counts, seed):
    df = pd.DataFrame({'userId': np.repeat(np.arange(len(counts)), counts), 'movieId': np.concatenate([np.arange(c) for c in counts])})
    df['rating'] = 3.0
    tr, te = stratified_split(df, seed=seed)
    n = df.groupby('userId').size()
    got = tr.groupby('userId').size().reindex(n.index, fill_value=0)
    assert (got == np.floor(0.75 * n + 0.5).astype(int)).all()
    assert len(tr) + len(te) == len(df) and tr.index.intersection(te.index).empty
    assert tr.index.is_monotonic_increasing and te.index.is_monotonic_increasing
    for u, c in n.items():                                                    # a user with 3 or more ratings is in both parts
        if c >= 3: assert (te.userId == u).any()
        if c <= 2: assert not (te.userId == u).any()

def test_split_repeats_with_seed_and_differs_without():
    r = movielens_tiny()
    a, b, c = stratified_split(r), stratified_split(r, seed=42), stratified_split(r, seed=7)
    assert a[1].index.equals(b[1].index)
    assert not a[1].index.equals(c[1].index)
    assert len(a[0]) == len(c[0])                                            # the sizes depend on the counts only
    with pytest.raises(InputError, match='ratio'): stratified_split(r, ratio=1.0)
    with pytest.raises(InputError, match="no column 'user'"): stratified_split(r, user_col='user')

# ------------------------------------------------------------------ models

def test_ease_is_the_constrained_ridge_regression():
    rng = np.random.default_rng(0)
    X = (rng.random((30, 6)) < 0.4).astype(np.float32)
    B = ease(sp.csr_matrix(X), l2=2.0, device='cpu').numpy()
    for j in range(6):
        o = [c for c in range(6) if c != j]
        w = np.linalg.solve(X[:, o].T @ X[:, o] + 2.0 * np.eye(5), X[:, o].T @ X[:, j])
        np.testing.assert_allclose(B[o, j], w, atol=1e-4)
    assert np.all(np.diag(B) == 0)

def test_text_links_an_item_nobody_else_rated():
    # item 3 was rated by one user only; its text is like items 0 and 1, which user 0 rated
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 1]], dtype=np.float32))
    F = np.array([[1., 0], [1, 0], [0, 1], [1, 0], [0, 1]]); F -= F.mean(0)
    s0 = X[0].toarray() @ ease(X, 1.0, device='cpu').numpy()
    s1 = X[0].toarray() @ ease(X, 1.0, F, 3.0, device='cpu').numpy()
    assert s1[0, 3] > s0[0, 3] and s1[0, 3] > s1[0, 2]

def test_biased_mf_learns_biases_and_falls_back():
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 50, 2000), rng.integers(0, 40, 2000)
    bu, bi = rng.normal(0, 0.7, 50), rng.normal(0, 0.7, 40)
    r = np.clip(3.5 + bu[u] + bi[i] + rng.normal(0, 0.3, 2000), 0.5, 5)
    m = BiasedMF(dim=4, reg=0.02, steps=300, lr=0.05, device='cpu').fit(u, i, r, 50, 40)
    assert rmse(r, m.predict(u, i)) < 0.4 < np.std(r)
    assert np.corrcoef(m.bi_.numpy(), bi)[0, 1] > 0.9
    p = m.predict(np.array([-1, 3, -1]), np.array([-1, -1, 5]))
    assert p[0] == pytest.approx(m.mu_, abs=1e-5)
    assert p[1] == pytest.approx(m.mu_ + float(m.bu_[3]), abs=1e-5)
    assert p[2] == pytest.approx(m.mu_ + float(m.bi_[5]), abs=1e-5)

def test_learns_taste_clusters_far_above_popularity():
    r, items = taste_clusters(n_users=200, n_items=90, per_user=16, seed=3)
    tr, te = stratified_split(r)
    res = evaluate(tr, te, items, text='tfidf', progress=False)
    m = res['models']
    assert res['ndcg@10'] > 0.5 and res['ndcg@10'] > 2 * m['popularity']['ndcg@10']
    assert res['rmse'] < 0.9 * rmse(te.rating, np.full(len(te), tr.rating.mean()))
    assert set(m) >= {'popularity', 'mf', res['model']}

def test_recommend_excludes_seen_and_repeats():
    r, items = taste_clusters(n_users=80, n_items=60, per_user=12, seed=5)
    a = Recommender(text='tfidf', progress=False, seed=1).fit(r, items)
    b = Recommender(text='tfidf', progress=False, seed=1).fit(r, items)
    for u in (1, 17, 80):
        out = a.recommend(u, k=8)
        assert len(out) == 8 and not out.item.isin(r[r.userId == u].movieId).any()
        assert out.item.tolist() == b.recommend(u, k=8).item.tolist()
        assert out.score.is_monotonic_decreasing and out.text.str.len().gt(0).all()
    assert a.predict(1, 2) == b.predict(1, 2)
    seen = r[r.userId == 1].movieId
    assert set(a.recommend(1, k=60, exclude_seen=False).item) >= set(seen)      # with them, every item can come back

def test_unknown_users_and_items():
    r, items = taste_clusters(n_users=60, n_items=40, per_user=10, seed=2)
    rec = Recommender(text='none', l2=20.0, progress=False).fit(r, items)
    pop = r.movieId.value_counts()
    out = rec.recommend('nobody', k=5)
    assert out.score.tolist() == pop.iloc[:5].astype(float).tolist() and (pop[out.item].to_numpy() == out.score.to_numpy()).all()
    with pytest.raises(NotFoundError, match="user 'nobody'"): rec.recommend('nobody', strict=True)
    assert rec.predict('nobody', 'nothing') == pytest.approx(r.rating.mean(), abs=1e-4)
    with pytest.raises(NotFoundError, match="item 'nothing'"): rec.predict(1, 'nothing', strict=True)
    assert rec.top_k(['1', 1], k=3)['1'] == rec.top_k([1], k=3)[1]                 # '1' and 1 are one user
    assert rec.content_weight_ == 0 and rec.text_method_ is None
    with pytest.raises(InputError, match='not fitted'): Recommender().recommend(1)

# ------------------------------------------------------------------ texts

def test_item_texts_and_vectors():
    movies, tags = movielens_tiny('movies'), movielens_tiny('tags')
    t = item_texts(movies, tags=tags)
    assert t[1].startswith('Toy Story (1995). Adventure, Animation, Children, Comedy, Fantasy. pixar')
    V, how = item_vectors(t.tolist(), 'tfidf')
    assert how == 'tfidf' and V.shape == (400, 128) and np.allclose(np.linalg.norm(V, axis=1), 1, atol=1e-5)
    s = pd.Series(V @ V[t.index.get_loc(1)], index=t.index).drop(1)
    assert 3114 in s.nlargest(3).index                                          # Toy Story 2 is nearest to Toy Story
    with pytest.raises(InputError, match="no column 'plot'"): item_texts(movies, text_cols=['plot'])
    with pytest.raises(InputError, match='method'): item_vectors(['a', 'b'], 'word2vec')

# ------------------------------------------------------------------ files and bad input

@pytest.fixture
def files(tmp_path):
    r, items = taste_clusters(n_users=60, n_items=40, per_user=10, seed=4)
    r.to_csv(tmp_path/'ratings.csv', index=False); items.to_csv(tmp_path/'items.csv', index=False)
    return tmp_path

def test_evaluate_files_json_ready(files):
    out = evaluate_files(files/'ratings.csv', files/'items.csv', text='tfidf')
    for k in ('ndcg@10', 'precision@10', 'recall@10', 'rmse', 'seconds'): assert isinstance(out[k], float), k
    assert 0 < out['ndcg@10'] <= 1 and out['n_ratings'] == 600 and out['split'] == {'ratio': 0.75, 'seed': 42, 'per_user': True}
    assert json.loads(json.dumps(out))['models'].keys() == out['models'].keys()
    implicit = evaluate_files(files/'ratings.csv', rating_col=None)
    assert implicit['rmse'] is None and 'mf' not in implicit['models'] and implicit['ndcg@10'] > 0

@pytest.mark.parametrize('text, match', [
    ('', 'the ratings file is empty'),
    ('userId,movieId,rating\n', 'the ratings are empty'),
    ('user,movieId,rating\n1,2,4\n', "no column 'userId'"),
    ('userId,movieId\n1,2\n', "no column 'rating'"),
    ('userId,movieId,rating\n1,2,4\n1,3,great\n', "ratings must be numbers, but one is 'great' (row 1, column 'rating')"),
    ('userId,movieId,rating\n1,2,4\n1,,4\n', "an item id is missing (row 1, column 'movieId')"),
    ('userId,movieId,rating\n1,2,\n', "a rating is missing (row 0, column 'rating')"),
    ('userId,movieId,rating\n1,2,4\n2,3,5\n', 'no user has enough ratings'),
])
def test_bad_ratings_files(tmp_path, text, match):
    p = tmp_path/'r.csv'; p.write_text(text)
    with pytest.raises(InputError) as e: evaluate_files(p)
    assert match in str(e.value) and 'r.csv' in str(e.value)

def test_bad_items_and_options(files):
    (files/'bad_items.csv').write_text('id,title\n1,A\n')
    with pytest.raises(InputError, match="bad_items.csv: the items have no column 'movieId'"): evaluate_files(files/'ratings.csv', files/'bad_items.csv')
    with pytest.raises(InputError, match='give the items file too'): evaluate_files(files/'ratings.csv', tags=files/'items.csv')
    with pytest.raises(InputError, match='cannot read'): read_ratings(files/'missing.csv')
    with pytest.raises(InputError, match="text must be one of"): Recommender(text='bert')
    with pytest.raises(InputError, match="l2 must be 'auto' or a number"): Recommender(l2=-1)
    with pytest.raises(InputError, match='three different columns'): check_ratings(pd.read_csv(files/'ratings.csv'), rating_col='userId')
