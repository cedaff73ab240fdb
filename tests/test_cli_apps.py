"The application commands end to end: `leptonhub support|sentiment|recommend`, on shipped or generated data, with the fast TF-IDF models."
import io, json, contextlib
import pandas as pd
from leptonhub.cli import main

def run(*args):
    "Run the CLI in-process; return (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(list(map(str, args)))
    return rc, out.getvalue(), err.getvalue()

def test_support_evaluate(tmp_path):
    from leptonhub.apps.support import clinc150_small
    clinc150_small('train').to_csv(tmp_path/'train.csv', index=False)
    clinc150_small('test').to_csv(tmp_path/'test.csv', index=False)
    rc, out, _ = run('support', 'evaluate', '--train', tmp_path/'train.csv', '--test', tmp_path/'test.csv', '--text', 'text', '--label', 'intent',
                     '--oos-label', 'oos', '--method', 'tfidf', '--json')
    r = json.loads(out)
    assert rc == 0 and r['accuracy'] > 0.5 and r['in_scope_accuracy'] > 0.5 and 0 <= r['oos_recall'] <= 1 and r['seconds'] > 0
    rc, out, _ = run('support', 'evaluate', '--train', tmp_path/'train.csv', '--test', tmp_path/'test.csv', '--label', 'intent', '--method', 'tfidf')
    assert rc == 0 and out.startswith('accuracy 0.')

def test_support_bad_input(tmp_path):
    pd.DataFrame({'text': ['a', 'b'], 'intent': ['x', 'x']}).to_csv(tmp_path/'one.csv', index=False)
    rc, out, err = run('support', 'evaluate', '--train', tmp_path/'one.csv', '--test', tmp_path/'one.csv', '--label', 'intent', '--method', 'tfidf')
    assert rc == 1 and out == '' and err.startswith('leptonhub: error: ') and err.count('\n') == 1
    rc, _, err = run('support', 'evaluate', '--train', tmp_path/'one.csv', '--test', tmp_path/'one.csv', '--label', 'label')
    assert rc == 1 and "'label'" in err
    rc, _, err = run('support', 'evaluate', '--train', tmp_path/'one.csv')
    assert rc == 1 and '--test' in err

def test_sentiment_evaluate(tmp_path):
    from leptonhub.apps.sentiment import finance_tweets
    tw = finance_tweets('sentiment', 'train')
    tw.head(3000).to_csv(tmp_path/'train.csv', index=False)
    tw.tail(500).to_csv(tmp_path/'test.csv', index=False)
    rc, out, _ = run('sentiment', 'evaluate', '--train', tmp_path/'train.csv', '--test', tmp_path/'test.csv', '--method', 'tfidf', '--json')
    r = json.loads(out)
    assert rc == 0 and r['accuracy'] > 0.65 and 0 < r['macro_f1'] <= 1

def test_sentiment_monitor(tmp_path):
    from leptonhub.apps.sentiment import synthetic_stream, finance_tweets
    finance_tweets('sentiment', 'train').to_csv(tmp_path/'train.csv', index=False)
    synthetic_stream(seed=1).to_csv(tmp_path/'surge.csv', index=False)
    synthetic_stream(surge=None, seed=1).to_csv(tmp_path/'flat.csv', index=False)
    common = ('--text', 'text', '--time', 'time', '--group', 'ticker', '--train', tmp_path/'train.csv', '--label', 'label_name', '--method', 'tfidf')
    rc, out, _ = run('sentiment', 'monitor', tmp_path/'surge.csv', *common, '--json')
    alerts = json.loads(out)
    assert rc == 0 and [a['group'] for a in alerts] == ['BA']
    assert '2026-03-05 13:00' <= alerts[0]['time'].replace('T', ' ') <= '2026-03-05 21:00' and alerts[0]['share'] > alerts[0]['baseline']
    rc, out, _ = run('sentiment', 'monitor', tmp_path/'flat.csv', *common)
    assert (rc, out.strip()) == (0, 'no surge of negative sentiment')
    rc, _, err = run('sentiment', 'monitor', tmp_path/'flat.csv', '--text', 'text')
    assert rc == 1 and '--time' in err

def test_recommend_evaluate(tmp_path):
    from leptonhub.apps.recommend import taste_clusters
    ratings, items = taste_clusters(n_users=120, n_items=150, seed=0)
    ratings.to_csv(tmp_path/'ratings.csv', index=False)
    rc, out, _ = run('recommend', 'evaluate', '--ratings', tmp_path/'ratings.csv', '--user-col', ratings.columns[0], '--item-col', ratings.columns[1],
                     '--rating-col', ratings.columns[2], '--json')
    r = json.loads(out)
    assert rc == 0 and r['ndcg@10'] > r['models']['popularity']['ndcg@10'] and r['rmse'] > 0
    pd.DataFrame({'userId': [1, 2], 'movieId': [1, 2], 'rating': ['great', 4]}).to_csv(tmp_path/'bad.csv', index=False)
    rc, _, err = run('recommend', 'evaluate', '--ratings', tmp_path/'bad.csv')
    assert rc == 1 and "'great'" in err and 'rating' in err
