def test_loader_workers_auto_leaves_one_core_to_training(monkeypatch):
    import yoho.train as train

    monkeypatch.setattr(train, "available_cores", lambda: 16)
    assert train.loader_workers(-1) == 15
    monkeypatch.setattr(train, "available_cores", lambda: 64)
    assert train.loader_workers(-1) == 16
    monkeypatch.setattr(train, "available_cores", lambda: 1)
    assert train.loader_workers(-1) == 0
    assert train.loader_workers(4) == 4 and train.loader_workers(0) == 0
