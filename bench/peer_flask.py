"""The peer a user would otherwise run: Flask + wechatpy under gunicorn (sync workers), doing only what the
decrypt-echo baseline does — verify and decrypt the callback, parse it, answer an encrypted echo — for the AI
bot's JSON and the app's XML wire formats. Keys come from the environment (``BENCH_AIBOT_AES_KEY``,
``BENCH_APP_AES_KEY``), set by ``bench_callbacks.py``, which starts it as

    gunicorn --workers 2 --bind 127.0.0.1:PORT bench.peer_flask:app
"""

from __future__ import annotations

import json
import os

import xmltodict
from flask import Flask, Response, request
from wechatpy.enterprise.crypto import WeChatCrypto

from tests.fake_wecom import AIBOT_TOKEN, APP_TOKEN, CORP_ID

aibot = WeChatCrypto(AIBOT_TOKEN, os.environ["BENCH_AIBOT_AES_KEY"], "")
app_crypto = WeChatCrypto(APP_TOKEN, os.environ["BENCH_APP_AES_KEY"], CORP_ID)
app = Flask(__name__)


@app.post("/wecom/aibot")
def handle_aibot() -> Response:
    q = request.args
    body = json.loads(request.get_data())
    plain = aibot.decrypt_message(
        {"Encrypt": body["encrypt"]}, q["msg_signature"], q["timestamp"], q["nonce"]
    )
    message = json.loads(plain)
    echo = json.dumps({"msgtype": "text", "text": {"content": message["text"]["content"]}})
    sealed = xmltodict.parse(aibot.encrypt_message(echo, q["nonce"], q["timestamp"]))["xml"]
    payload = {
        "encrypt": sealed["Encrypt"],
        "msgsignature": sealed["MsgSignature"],
        "timestamp": int(sealed["TimeStamp"]),
        "nonce": sealed["Nonce"],
    }
    return Response(json.dumps(payload), mimetype="application/json")


@app.post("/wecom/app")
def handle_app() -> Response:
    q = request.args
    plain = app_crypto.decrypt_message(request.get_data(), q["msg_signature"], q["timestamp"], q["nonce"])
    xmltodict.parse(plain)
    return Response(app_crypto.encrypt_message(plain, q["nonce"], q["timestamp"]), mimetype="text/plain")
