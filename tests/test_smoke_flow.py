"""The whole loop once, through the pages: sign in, download, upload an edit, approve, see it."""

from conftest import row, table


def test_download_edit_upload_approve_audit(app, login, seeded):
    alice, boss = login("alice"), login("boss")
    download = alice.get("/download")
    assert download.status_code == 200
    text = download.data.decode("utf-8-sig").replace("Sales", "Sales EMEA")
    r = alice.upload(text, comment="renamed")
    assert r.status_code == 302
    review = alice.get(r.headers["Location"])
    assert "Sales EMEA" in review.text and "renamed" in review.text
    change_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = boss.post(f"/changes/{change_id}/approve")
    assert r.status_code == 302
    after = alice.get("/download").data.decode("utf-8-sig")
    assert "Sales EMEA" in after and after.count("\r\n") == 4
    audit = alice.get("/audit?key=DS-1")
    assert "Sales EMEA" in audit.text and "boss" in audit.text


def test_unchanged_upload_stages_nothing(app, login, seeded):
    alice = login("alice")
    r = alice.upload(alice.get("/download").data)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "No changes" in alice.get("/").text
    assert table(row("X")).startswith("id,")
