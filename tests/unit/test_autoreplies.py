"""Out-of-office notices, vacation replies, acknowledgments and challenges, in the layouts of the
systems that send them and in the languages of business mail — and the messages that only look
like them (list mail, a person who mentions an absence or quotes a notice)."""

from __future__ import annotations

import pytest

from mailgate import automatic, loops
from mailgate.bounces import classify
from mailgate.message import parse

#: (language, the notice's text) — each says thanks, an absence, and whom to ask meanwhile
NOTICES = [
    ("en", "Thank you for your email. I am out of the office until Monday 3 March with no access to email.\n"
           "For urgent matters please contact Jane Doe (jane@example.com)."),
    ("de", "Danke für Ihre Nachricht. Ich bin bis einschließlich 3. März im Urlaub.\n"
           "In dringenden Fällen wenden Sie sich bitte an Jane Doe (jane@example.com)."),
    ("fr", "Merci pour votre message. Je suis en congés jusqu'au 3 mars inclus.\n"
           "Pour toute urgence, veuillez contacter Jane Doe (jane@example.com)."),
    ("es", "Gracias por su mensaje. Estoy de vacaciones hasta el 3 de marzo.\n"
           "Para asuntos urgentes, póngase en contacto con Jane Doe (jane@example.com)."),
    ("pt", "Obrigado pela sua mensagem. Estou de férias até 3 de março, com acesso limitado ao e-mail.\n"
           "Em caso de urgência, contacte Jane Doe (jane@example.com)."),
    ("it", "Grazie per il suo messaggio. Sono in ferie fino al 3 marzo.\n"
           "Per questioni urgenti si prega di contattare Jane Doe (jane@example.com)."),
    ("nl", "Bedankt voor uw bericht. Ik ben met vakantie tot en met 3 maart.\n"
           "Voor dringende zaken kunt u contact opnemen met Jane Doe (jane@example.com)."),
    ("pl", "Dziękuję za wiadomość. Jestem na urlopie do 3 marca.\n"
           "W pilnych sprawach proszę o kontakt z Jane Doe (jane@example.com)."),
    ("ru", "Спасибо за ваше письмо. Я в отпуске до 3 марта.\n"
           "По срочным вопросам обращайтесь к Jane Doe (jane@example.com)."),
    ("uk", "Дякую за ваш лист. Я у відпустці до 3 березня.\n"
           "З термінових питань звертайтеся до Jane Doe (jane@example.com)."),
    ("cs", "Děkuji za Vaši zprávu. Do 3. března jsem na dovolené.\n"
           "V naléhavých případech kontaktujte Jane Doe (jane@example.com)."),
    ("sv", "Tack för ditt mejl. Jag är på semester till och med 3 mars.\n"
           "I brådskande ärenden, kontakta Jane Doe (jane@example.com)."),
    ("da", "Tak for din mail. Jeg er på ferie og er tilbage mandag den 3. marts.\n"
           "I hastende sager kontakt venligst Jane Doe (jane@example.com)."),
    ("tr", "E-postanız için teşekkür ederim. 3 Mart tarihine kadar izindeyim.\n"
           "Acil durumlarda Jane Doe (jane@example.com) ile iletişime geçebilirsiniz."),
    ("ja", "メールありがとうございます。3月3日まで休暇のため不在にしております。\n"
           "お急ぎの場合は Jane Doe (jane@example.com) までご連絡ください。"),
    ("zh", "感谢您的来信。我正在休假，3月3日返回办公室。\n如有急事，请联系 Jane Doe (jane@example.com)。"),
    ("ko", "메일 감사합니다. 3월 3일까지 휴가로 부재중입니다.\n급한 용무는 Jane Doe (jane@example.com)에게 연락 주시기 바랍니다."),
    ("ar", "شكرا لرسالتك. أنا في إجازة حتى 3 مارس.\nللأمور العاجلة يرجى التواصل مع Jane Doe (jane@example.com)."),
]

#: Outlook/Exchange's localised "Automatic reply:" prefixes (and Notes', wp.pl's, AOL's forms)
AUTO_REPLY_SUBJECTS = [
    "Automatic reply: Order 7781", "Autoreply: Order 7781", "Automatische Antwort: Bestellung 7781",
    "Réponse automatique : Commande 7781", "Respuesta automática: Pedido 7781", "Resposta automática: Pedido 7781",
    "Risposta automatica: Ordine 7781", "Automatisch antwoord: Bestelling 7781", "Odpowiedź automatyczna: Zamówienie",
    "Автоматический ответ: Заказ 7781", "Автоматична відповідь: Замовлення 7781", "Automātiskā atbilde: Pasūtījums",
    "Automatická odpověď: Objednávka 7781", "Automatiskt svar: Order 7781", "Automatisk svar: Ordre 7781",
    "Otomatik yanıt: Sipariş 7781", "自動応答: 注文 7781", "自动回复: 订单 7781", "自動回覆：訂單 7781", "자동 회신: 주문 7781",
    "رد تلقائي: الطلب 7781", "AUTO: Jane Doe is out of the office (returning 03/03/2026)",
    "[Automatyczna odpowiedź] Zamówienie 7781", "Re: Order 7781 (Automatic Response)",
]


def _mail(subject: str, body: str, headers: str = "", *, frm: str = "Jane Doe <jane@client.example>",
          reply: bool = True) -> bytes:
    threading = "In-Reply-To: <o7781@shop.example>\nReferences: <o7781@shop.example>\n" if reply else ""
    return (f"From: {frm}\nTo: sales@shop.example\nSubject: {subject}\nDate: Mon, 24 Feb 2026 09:00:00 +0100\n"
            f"Message-ID: <n{abs(hash((subject, body, headers))) % 10**9}@client.example>\n{threading}{headers}"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"{body}\n").encode()


def _is_auto_reply(raw: bytes) -> bool:
    """What both readers say: the classifier's kind, and routing's loop signals."""
    p = parse(raw)
    kind = classify(raw).kind == "auto-reply"
    signals = bool(loops.signals(p).auto_reply)
    assert kind == signals, (classify(raw).to_dict(), loops.signals(p))
    return kind


@pytest.mark.parametrize("language,text", NOTICES, ids=[n[0] for n in NOTICES])
def test_a_filter_reply_with_no_header_is_an_out_of_office_by_its_text(language, text):
    # Thunderbird filters, sieve scripts and webmail rules answer "Re: <subject>" with no RFC 3834 header
    assert _is_auto_reply(_mail("Re: Order 7781", text))


@pytest.mark.parametrize("subject", AUTO_REPLY_SUBJECTS)
def test_a_responders_subject_alone_marks_an_auto_reply(subject):
    # a relay stripped Auto-Submitted and the X-MS-Exchange headers: the subject still says it
    assert _is_auto_reply(_mail(subject, "Back on Monday."))


def test_exchange_reply_with_a_latvian_subject_and_an_english_body_is_an_auto_reply():
    raw = _mail("Automātiskā atbilde: Piedāvājums 2291", "Paldies par ziņu.\n\nI am out of office until 14 April.",
                "Thread-Topic: Piedāvājums 2291\nX-MS-Has-Attach:\n")
    assert _is_auto_reply(raw)


@pytest.mark.parametrize("headers", [
    "Auto-Submitted: auto-replied\n",                                   # Gmail's vacation responder
    "Auto-Submitted: auto-replied (zimbra; vacation)\n",                # Zimbra
    "Auto-Submitted: auto-replied\nX-Apple-Action: vacation\n",         # iCloud
    "X-Autoreply: yes\nX-Autorespond: yes\n",                           # Yahoo
    "Precedence: auto_reply\n",
])
def test_vendor_headers_mark_an_auto_reply_whatever_the_subject(headers):
    assert _is_auto_reply(_mail("Re: Order 7781", "I'll answer when I can.", headers))


def test_older_outlook_out_of_office_subject_needs_and_has_a_second_sign():
    body = "Vielen Dank. Ich bin nicht im Büro und lese meine E-Mails nur eingeschränkt."
    assert _is_auto_reply(_mail("Abwesend: Bestellung 7781", body, "X-Auto-Response-Suppress: All\n"))
    # the same prefix from a person, with nothing else: a person
    assert not _is_auto_reply(_mail("Abwesend: Montag und Dienstag", "Bin am Mittwoch zurück, Jane", reply=False))


def test_an_acknowledgment_from_a_null_sender_without_list_headers_is_an_auto_reply():
    raw = _mail("Thank you for your message", "We received your message and will reply as soon as possible.",
                "Return-Path: <>\nPrecedence: bulk\n", reply=False)
    assert _is_auto_reply(raw)


@pytest.mark.parametrize("layout", ["digest", "newsletter"])
def test_list_mail_that_mentions_an_absence_is_not_an_auto_reply_but_is_never_answered(layout):
    headers = {"digest": "Precedence: list\nList-Id: Updates <updates.lists.shop.example>\n"
                         "List-Unsubscribe: <mailto:leave@lists.shop.example>\n",
               "newsletter": "Precedence: bulk\nList-Unsubscribe: <https://news.shop.example/u/1>\n"}[layout]
    raw = _mail("Weekly digest", "Thank you for your message. Our office is out of the office on Friday; for "
                "urgent matters please contact support.", headers, frm="News <news@lists.shop.example>", reply=False)
    p = parse(raw)
    sig = loops.signals(p)
    assert classify(raw).kind == "normal" and sig.auto_reply == []
    assert sig.bulk and sig.automatic   # RFC 3834 §2: never answered
    assert loops.may_answer("news@lists.shop.example", sig, frozenset()).startswith("automatic message: Precedence")


@pytest.mark.parametrize("body", [
    "Hi Tom,\n\nI'm out of the office next week - can we move our call to Monday the 21st?\nThe revised quote is "
    "attached.\n\nThanks,\nJane",
    "Hallo Tom,\n\nich bin nächste Woche nicht im Büro – können wir das Telefonat auf Montag verschieben?\n\nDanke,\nJane",
    "Bonjour Tom,\n\nje serai en congés la semaine prochaine. Pouvons-nous avancer la réunion ?\n\nJane",
    "Tom,\n\n来週は出張で不在です。月曜日に電話できますか？\n\nJane",
])
def test_a_person_who_mentions_being_away_is_a_person(body):
    assert not _is_auto_reply(_mail("Re: Order 7781", body))


def test_a_person_quoting_an_out_of_office_notice_is_a_person():
    quoted = "\n".join("> " + line for line in NOTICES[0][1].splitlines())
    raw = _mail("Re: Automatic reply: Order 7781", f"OK, noted - I'll write to Jane.\n\n{quoted}\n")
    assert not _is_auto_reply(raw)
    outlook = ("OK, noted.\n\n-----Original Message-----\nFrom: Jane Doe <jane@client.example>\n"
               "Sent: Monday, 24 February 2026 09:00\nSubject: Automatic reply: Order 7781\n\n" + NOTICES[1][1])
    assert not _is_auto_reply(_mail("RE: Automatic reply: Order 7781", outlook))


def test_a_challenge_response_system_is_an_auto_reply_even_dressed_as_a_dsn():
    raw = ("From: noreply@screening.example\nTo: sales@shop.example\nSubject: Re: Order 7781\n"
           "Message-ID: <cr1@screening.example>\nIn-Reply-To: <o7781@shop.example>\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           "--b\nContent-Type: text/plain\n\nHello,\n\nYour message about \"Order 7781\" has been waitlisted.\n"
           "Please add yourself to my guest list so your messages reach my inbox:\n"
           "https://screening.example/confirm?t=1\n\nThank you,\nJane\n"
           "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; screening.example\n\n"
           "Final-Recipient: rfc822; jane@client.example\nAction: failed\nStatus: 4.7.0\n"
           "Diagnostic-Code: X-Screening-Notice; Sender not pre-approved\n--b--\n").encode()
    report = classify(raw)
    assert report.kind == "auto-reply" and report.method == "challenge-response"
    assert [r.address for r in report.recipients] == ["noreply@screening.example"]
    headers = _mail("RE: Order 7781", "Click the link to confirm you are a person.",
                    "X-Bluebottle-Request: <1>\n", frm="jane@protected.example")
    assert classify(headers).kind == "auto-reply" and loops.signals(parse(headers)).auto_reply


def test_the_notice_text_read_is_bounded_and_read_in_one_pass():
    body = "Thank you for your email. " + "I am out of the office. " * 200_000
    assert len(automatic.notice_text(parse(_mail("Re: x", body)))) <= automatic.MAX_NOTICE_TEXT
    assert set(automatic.notice_signs(body[:10_000])) == {"thanks", "absence"}
