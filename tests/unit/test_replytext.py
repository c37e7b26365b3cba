"""Reply text: the new words of a reply, written the way mail clients lay replies out.

Every message here was written for these tests in the layout a client produces (quote headers
as Gmail, Outlook, Apple Mail, Thunderbird, mail.ru, Yandex and phone apps localise them); the
expected text follows tests/data/understanding/REPLY-RULES.md.
"""

from __future__ import annotations

import pytest

from mailgate.message import parse
from mailgate.replytext import MAX_REPLY_INPUT, extract_reply, reply_text

QUOTE = "\n> Could you send the revised quote for the 40 chairs?\n> Thanks, Tom\n"
ANSWER = "Yes, 40 chairs at 89 EUR each."

# One line above a quote header, the header as each client and language writes it, then '>' lines.
TOP_POSTED_HEADERS = {
    "gmail-en-gb": "On Mon, 7 Apr 2025 at 09:12, Tom Olsen <tom@shop.example.com> wrote:",
    "gmail-en-us": "On Mon, Apr 7, 2025 at 9:12 AM Tom Olsen <tom@shop.example.com> wrote:",
    "gmail-de": "Am Mo., 7. Apr. 2025 um 09:12 Uhr schrieb Tom Olsen <tom@shop.example.com>:",
    "gmail-de-name-first": "Tom Olsen <tom@shop.example.com> schrieb am Mo., 7. Apr. 2025, 09:12:",
    "gmail-fr": "Le lun. 7 avr. 2025 à 09:12, Tom Olsen <tom@shop.example.com> a écrit :",
    "gmail-es": "El lun, 7 abr 2025 a las 9:12, Tom Olsen (<tom@shop.example.com>) escribió:",
    "gmail-pt": "Em seg., 7 de abr. de 2025 às 09:12, Tom Olsen <tom@shop.example.com> escreveu:",
    "gmail-it": "Il giorno lun 7 apr 2025 alle ore 09:12 Tom Olsen <tom@shop.example.com> ha scritto:",
    "gmail-nl": "Op ma 7 apr 2025 om 09:12 schreef Tom Olsen <tom@shop.example.com>:",
    "gmail-pl": "pon., 7 kwi 2025 o 09:12 Tom Olsen <tom@shop.example.com> napisał(a):",
    "thunderbird-pl": "W dniu 7.04.2025 o 09:12, Tom Olsen pisze:",
    "gmail-ru": "пн, 7 апр. 2025 г. в 09:12, Tom Olsen <tom@shop.example.com>:",
    "gmail-uk": "пн, 7 квіт. 2025 р. о 09:12 Tom Olsen <tom@shop.example.com> пише:",
    "gmail-ja": "2025年4月7日(月) 9:12 Tom Olsen <tom@shop.example.com>:",
    "gmail-zh-cn": "Tom Olsen <tom@shop.example.com> 于2025年4月7日周一 09:12写道：",
    "gmail-zh-tw": "Tom Olsen <tom@shop.example.com> 於 2025年4月7日 週一 上午9:12寫道：",
    "gmail-ko": "2025년 4월 7일 (월) 오전 9:12, Tom Olsen <tom@shop.example.com>님이 작성:",
    "gmail-tr": "Tom Olsen <tom@shop.example.com>, 7 Nis 2025 Pzt, 09:12 tarihinde şunu yazdı:",
    "gmail-ar": "في الاثنين، 7 أبريل 2025 في 9:12 ص، كتب Tom Olsen <tom@shop.example.com>:",
    "gmail-hi": "सोम, 7 अप्रैल 2025 को 9:12 am बजे Tom Olsen <tom@shop.example.com> ने लिखा:",
    "gmail-id": "Pada tanggal Sen, 7 Apr 2025 pukul 09.12 Tom Olsen <tom@shop.example.com> menulis:",
    "gmail-sv": "Den mån 7 apr. 2025 kl 09:12 skrev Tom Olsen <tom@shop.example.com>:",
    "gmail-da": "Den man. 7. apr. 2025 kl. 09.12 skrev Tom Olsen <tom@shop.example.com>:",
    "gmail-cs": "po 7. 4. 2025 v 9:12 odesílatel Tom Olsen <tom@shop.example.com> napsal:",
    "gmail-vi": "Vào Th 2, 7 thg 4, 2025 vào lúc 09:12 Tom Olsen <tom@shop.example.com> đã viết:",
    "gmail-fi": "ma 7.4.2025 klo 9.12 Tom Olsen (tom@shop.example.com) kirjoitti:",
    "gmail-el": "Στις Δευ 7 Απρ 2025 στις 9:12 π.μ., ο/η Tom Olsen <tom@shop.example.com> έγραψε:",
    "gmail-hu": "Tom Olsen <tom@shop.example.com> ezt írta (időpont: 2025. ápr. 7., H, 9:12):",
    "gmail-ro": "Pe lun., 7 apr. 2025 la 09:12, Tom Olsen <tom@shop.example.com> a scris:",
    "gmail-he": "\u202bבתאריך יום ב׳, 7 באפר׳ 2025 ב-9:12 מאת \u202aTom Olsen\u202c\u200f <\u202atom@shop.example.com"
                "\u202c\u200f>:\u202c",
    "apple-en": "On 7 Apr 2025, at 09:12, Tom Olsen <tom@shop.example.com> wrote:",
    "apple-de": "Am 07.04.2025 um 09:12 schrieb Tom Olsen <tom@shop.example.com>:",
    "thunderbird-en": "On 07/04/2025 09:12, Tom Olsen wrote:",
    "thunderbird-fr": "Le 07/04/2025 à 09:12, Tom Olsen a écrit :",
    "yahoo": "On Monday, April 7, 2025, 09:12:33 AM GMT+2, Tom Olsen <tom@shop.example.com> wrote:",
    "mail-ru": "Понедельник, 7 апреля 2025, 9:12 +03:00 от Tom Olsen <tom@shop.example.com>:",
    "yandex": '07.04.2025, 09:12, "Tom Olsen" <tom@shop.example.com>:',
    "date-first": "2016-03-03 17:21 GMT+01:00 Tom Olsen <tom@shop.example.com>:",
    "name-first": "Tom Olsen <tom@shop.example.com> wrote:",
    "at-you-wrote": "At 09:12 07.04.2025, you wrote:",
    "bare-name": "Tom Olsen wrote:",
    "zoho-dashes": "---- On Mon, 07 Apr 2025 09:12:33 +0200 Tom Olsen <tom@shop.example.com> wrote ----",
    "android-dashes": "---- Tom Olsen wrote ----",
}


@pytest.mark.parametrize("header", TOP_POSTED_HEADERS.values(), ids=TOP_POSTED_HEADERS.keys())
def test_top_posted_reply_above_a_quote_header_in_any_language(header):
    assert extract_reply(f"{ANSWER}\n\n{header}\n{QUOTE}") == ANSWER


@pytest.mark.parametrize("header", TOP_POSTED_HEADERS.values(), ids=TOP_POSTED_HEADERS.keys())
def test_bottom_posted_reply_below_the_quote(header):
    assert extract_reply(f"{header}\n{QUOTE}\n{ANSWER}\n\nAnna\n") == f"{ANSWER}\n\nAnna"


WRAPPED_HEADERS = {
    "gmail-us": "On Mon, Apr 7, 2025 at 9:12 AM Tom Olsen <tom@shop.example.com>\nwrote:",
    "address-on-its-own-line": "On Mon, Apr 7, 2025 at 9:12 AM, Tom Olsen <\ntom@shop.example.com> wrote:",
    "three-lines": "On Apr 7, 2025, at 9:12 AM, Tom Olsen <\ntom@shop.example.com>\nwrote:",
    "ru-polzovatel": "7 апреля 2025 г., 09:12 пользователь Tom Olsen <tom@shop.example.com>\nнаписал:",
    "pl-uzytkownik": "W dniu 7 kwietnia 2025 09:12 użytkownik Tom Olsen <tom@shop.example.com>\nnapisał:",
    "de-name-first": "Tom Olsen <tom@shop.example.com> schrieb am Mo., 7. Apr. 2025,\n09:12:",
    "ru-gmail": "пн, 7 апр. 2025 г. в 09:12, Tom Olsen <\ntom@shop.example.com>:",
    "date-first": "2014-10-17 11:28 GMT+03:00 Tom Olsen <\ntom@shop.example.com>:",
}


@pytest.mark.parametrize("header", WRAPPED_HEADERS.values(), ids=WRAPPED_HEADERS.keys())
def test_a_quote_header_wrapped_over_two_or_three_lines(header):
    assert extract_reply(f"{ANSWER}\n{header}\n{QUOTE}") == ANSWER


@pytest.mark.parametrize("header", [
    "On Mon, Apr 7, 2025 at 9:12 AM Tom Olsen <tom@shop.example.com> wrote", "2011/4/7 Tom Olsen <tom@shop.example.com>",
    "Am 07.04.2025 um 09:12 schrieb Tom Olsen"])
def test_a_quote_header_that_lost_its_colon_before_quoted_lines(header):
    assert extract_reply(f"{ANSWER}\n\n{header}\n{QUOTE}") == ANSWER
    assert extract_reply(f"{ANSWER}\n\n{header}\n\nCould you send it?") == f"{ANSWER}\n\n{header}\n\nCould you send it?"


def test_a_header_that_shares_its_line_with_the_reply():
    text = "Sounds good. On Mon, Apr 7, 2025 at 9:12 AM, tom@shop.example.com wrote:\n> Deal?\n"
    assert extract_reply(text) == "Sounds good."
    text = "Sounds good.--- On Mon, Apr 7, 2025 at 9:12 AM, tom@shop.example.com wrote:\n> Deal?\n"
    assert extract_reply(text) == "Sounds good."


HEADER_BLOCKS = {
    "outlook-en": "From: Tom Olsen <tom@shop.example.com>\nSent: Monday, April 7, 2025 9:12 AM\n"
                  "To: Anna Berg <anna@client.example>\nSubject: Quote 2291",
    "outlook-on-behalf": "From: Tom Olsen <tom@shop.example.com> On Behalf Of Sales\n"
                         "Sent: Monday, April 7, 2025 9:12 AM\nTo: Anna Berg\nSubject: Quote 2291",
    "outlook-bold": "*From:* Tom Olsen [mailto:\ntom@shop.example.com]\n*Sent:* Monday, April 7, 2025 9:12 AM\n"
                    "*To:* Anna Berg\n*Subject:* Quote 2291",
    "outlook-mac": "From: Tom Olsen <tom@shop.example.com>\nDate: Monday, 7 April 2025 at 09:12\n"
                   "To: Anna Berg <anna@client.example>\nSubject: Quote 2291",
    "outlook-de": "Von: Tom Olsen <tom@shop.example.com>\nGesendet: Montag, 7. April 2025 09:12\n"
                  "An: Anna Berg\nBetreff: Angebot 2291",
    "outlook-fr": "De : Tom Olsen <tom@shop.example.com>\nEnvoyé : lundi 7 avril 2025 09:12\n"
                  "À : Anna Berg\nObjet : Devis 2291",
    "outlook-es": "De: Tom Olsen <tom@shop.example.com>\nEnviado el: lunes, 7 de abril de 2025 9:12\n"
                  "Para: Anna Berg\nAsunto: Presupuesto 2291",
    "outlook-pt": "De: Tom Olsen <tom@shop.example.com>\nEnviado: segunda-feira, 7 de abril de 2025 09:12\n"
                  "Para: Anna Berg\nAssunto: Orçamento 2291",
    "outlook-it": "Da: Tom Olsen <tom@shop.example.com>\nInviato: lunedì 7 aprile 2025 09:12\n"
                  "A: Anna Berg\nOggetto: Preventivo 2291",
    "outlook-nl": "Van: Tom Olsen <tom@shop.example.com>\nVerzonden: maandag 7 april 2025 09:12\n"
                  "Aan: Anna Berg\nOnderwerp: Offerte 2291",
    "outlook-pl": "Od: Tom Olsen <tom@shop.example.com>\nWysłano: poniedziałek, 7 kwietnia 2025 09:12\n"
                  "Do: Anna Berg\nTemat: Oferta 2291",
    "outlook-ru": "От: Tom Olsen <tom@shop.example.com>\nОтправлено: 7 апреля 2025 г. 9:12\n"
                  "Кому: Мария <maria@client.example>\nТема: Предложение 2291",
    "outlook-uk": "Від: Tom Olsen <tom@shop.example.com>\nНадіслано: 7 квітня 2025 р. 9:12\n"
                  "Кому: Марія\nТема: Пропозиція 2291",
    "outlook-sv": "Från: Tom Olsen <tom@shop.example.com>\nSkickat: den 7 april 2025 09:12\n"
                  "Till: Anna Berg\nÄmne: Offert 2291",
    "outlook-da": "Fra: Tom Olsen <tom@shop.example.com>\nSendt: 7. april 2025 09:12\nTil: Anna Berg\nEmne: Tilbud",
    "outlook-tr": "Kimden: Tom Olsen <tom@shop.example.com>\nGönderildi: 7 Nisan 2025 Pazartesi 09:12\n"
                  "Kime: Anna Berg\nKonu: Teklif 2291",
    "outlook-ja": "差出人: Tom Olsen <tom@shop.example.com>\n送信日時: 2025年4月7日 9:12\n宛先: Anna Berg\n件名: 見積",
    "outlook-zh": "发件人: Tom Olsen <tom@shop.example.com>\n发送时间: 2025年4月7日 9:12\n收件人: Anna Berg\n主题: 报价",
    "outlook-ko": "보낸 사람: Tom Olsen <tom@shop.example.com>\n보낸 날짜: 2025년 4월 7일 월요일 오전 9:12\n"
                  "받는 사람: Anna Berg\n제목: 견적",
    "outlook-ar": "من: Tom Olsen <tom@shop.example.com>\nتاريخ الإرسال: 7 أبريل 2025 9:12\nإلى: Anna Berg\nالموضوع: عرض",
    "outlook-id": "Dari: Tom Olsen <tom@shop.example.com>\nDikirim: Senin, 07 April 2025 09.12\n"
                  "Kepada: Anna Berg\nPerihal: Penawaran",
    "date-first-block": "Date: Mon, 7 Apr 2025 09:12:00 +0200\nFrom: tom@shop.example.com\nSubject: Quote",
    "single-from": "From: tom@shop.example.com",
}


@pytest.mark.parametrize("block", HEADER_BLOCKS.values(), ids=HEADER_BLOCKS.keys())
def test_header_blocks_of_a_quoted_message_in_any_language(block):
    text = f"{ANSWER}\n\nAnna\n\n{block}\n\nCould you send the revised quote?\n\nTom\n"
    assert extract_reply(text) == f"{ANSWER}\n\nAnna"


SEPARATORS = {
    "outlook": "-----Original Message-----",
    "outlook-spaced": "----- Original Message -----",
    "stars": "*-------- Original Message --------*",
    "german": "-----Ursprüngliche Nachricht-----",
    "french": "-------- Message d'origine --------",
    "spanish": "-------- Mensaje original --------",
    "russian": "-------- Исходное сообщение --------",
    "long-dashes": "-" * 72,
    "outlook-underscores": "_" * 32,
}


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_separators_before_a_quoted_message(separator):
    text = (f"{ANSWER}\n\n{separator}\nFrom: Tom Olsen [mailto:tom@shop.example.com]\n"
            "Sent: Monday, April 7, 2025 9:12 AM\nSubject: Quote\n\nCould you send it?\n")
    assert extract_reply(text) == ANSWER


def test_an_original_message_separator_with_no_header_block_after_it():
    assert extract_reply(f"{ANSWER}\n\n-----Original Message-----\n\nCould you send it?") == ANSWER


def test_a_dash_line_that_is_not_a_separator_is_text():
    text = "Please fill in the form.\n\n---------- Enter your answer below ----------\n\nMy answer."
    assert extract_reply(text) == text
    text = "Totals:\n-----------\n40 chairs\n"
    assert extract_reply(text) == "Totals:\n-----------\n40 chairs"


FORWARD = ("---------- Forwarded message ---------\nFrom: Tom Olsen <tom@shop.example.com>\n"
           "Date: Mon, Apr 7, 2025 at 9:12 AM\nSubject: Quote 2291\nTo: <sales@client.example>\n\n"
           "Could you send the revised quote for the 40 chairs?")


@pytest.mark.parametrize("marker", [
    "---------- Forwarded message ---------", "-------- Forwarded Message --------", "Begin forwarded message:",
    "---------- Weitergeleitete Nachricht ---------", "Anfang der weitergeleiteten Nachricht:",
    "Début du message réexpédié :", "---------- Mensaje reenviado ---------", "-------- Messaggio inoltrato --------",
    "---------- Пересылаемое сообщение ----------"])
def test_a_forward_with_a_note_keeps_the_note(marker):
    text = FORWARD.replace("---------- Forwarded message ---------", marker)
    assert extract_reply("Anna, can you answer this one?\n\n" + text) == "Anna, can you answer this one?"


def test_a_forward_with_no_note_keeps_the_forwarded_message():
    assert extract_reply(FORWARD + "\n") == FORWARD
    outlook = ("________________________________\nFrom: Tom Olsen <tom@shop.example.com>\n"
               "Sent: Monday, April 7, 2025 9:12 AM\nSubject: Quote\n\nCould you send it?")
    assert extract_reply(outlook) == outlook


def test_interleaved_answers_are_kept_in_order():
    text = ("On Mon, 7 Apr 2025 at 09:12, Tom Olsen <tom@shop.example.com> wrote:\n> Can you deliver by May?\n\n"
            "Yes, by 12 May.\n\n> And the colour?\n> Grey or black?\n\nDark grey.\n\nAnna\n")
    assert extract_reply(text) == "Yes, by 12 May.\n\nDark grey.\n\nAnna"


def test_interleaved_answers_without_blank_lines_and_without_a_header():
    text = "> Can you deliver by May?\nYes, by 12 May.\n> And the colour?\nDark grey.\n"
    assert extract_reply(text) == "Yes, by 12 May.\nDark grey."


def test_a_reply_above_and_a_closing_below_the_quote():
    text = f"{ANSWER}\n\nOn Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\n{QUOTE}\nRegards, Anna\n"
    assert extract_reply(text) == f"{ANSWER}\n\nRegards, Anna"


def test_a_header_followed_by_unquoted_text_drops_everything_after_it():
    text = f"{ANSWER}\n\nOn Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\n\nCould you send it?\n\nTom"
    assert extract_reply(text) == ANSWER


def test_a_wrapped_link_inside_a_quote_is_not_an_answer():
    text = (f"{ANSWER}\n\nOn Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\n> See the catalogue "
            "(https://shop.example.com/catalogue/2025/\nchairs?id=40)\n> Thanks\n")
    assert extract_reply(text) == ANSWER


def test_quoted_lines_without_a_header_are_dropped_but_one_decorated_line_is_text():
    assert extract_reply(f"{ANSWER}\n\n> On 7 Apr 2025, at 09:12, Tom wrote:\n>\n> Deal?\n") == ANSWER
    text = "Visit us now\n>>> >>>  https://shop.example.com <<<\nClick the link above"
    assert extract_reply(text) == text


@pytest.mark.parametrize("signature", [
    "Sent from my iPhone", "Sent from Outlook Mobile", "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Get Outlook for Android", "Sent from Yahoo Mail on Android", "Sent from my Galaxy", "Sendt fra min iPad",
    "Skickat från min iPhone", "Envoyé depuis mon iPhone", "Envoyé de mon iPhone", "Von meinem iPhone gesendet",
    "Enviado desde mi iPhone", "Enviado do meu iPhone", "Inviato da iPhone", "Verzonden vanaf mijn iPhone",
    "Wysłane z iPhone'a", "Odesláno z iPhonu", "Отправлено с iPhone", "Надіслано з iPhone",
    "iPhone'umdan gönderildi", "iPhoneから送信", "发自我的iPhone", "내 iPhone에서 보냄", "Dikirim dari iPhone saya",
    "Nosūtīts no mana iPhone"])
def test_mobile_signatures_are_dropped(signature):
    text = f"{ANSWER}\n\n{signature}\n\nOn Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\n{QUOTE}"
    assert extract_reply(text) == ANSWER
    assert extract_reply(f"{ANSWER}\n\n{signature}\n") == ANSWER


def test_a_sentence_that_starts_like_a_mobile_signature_is_text():
    text = "Sent from my office in Oslo, the chairs arrive Monday.\nAnna"
    assert extract_reply(text) == text


def test_the_signature_after_dash_dash_space_is_dropped_a_closing_is_kept():
    assert extract_reply(f"{ANSWER}\n\n-- \nAnna Berg\nSales, Client Ltd\n+44 20 7946 0000\n") == ANSWER
    closing = f"{ANSWER}\n\nMit freundlichen Grüßen\nMaria"
    assert extract_reply(closing + "\n\nVon: Tom <tom@shop.example.com>\nGesendet: Montag\nAn: Maria\n") == closing


def test_sentences_that_look_a_little_like_headers_are_text():
    for text in ("On your remote host you can run:\n\n  telnet 127.0.0.1 52698\n\nIt should connect.",
                 "One outstanding question I had:\n\nwhere do the chairs go?",
                 "On Monday we deliver.\nOn Tuesday we invoice.",
                 "The meeting starts at 10:30:\n- chairs\n- tables",
                 "Please note what I wrote:\n\nthe price is final."):
        assert extract_reply(text) == text


def test_an_empty_reply_above_a_quote_is_empty():
    assert extract_reply(f"On Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\n{QUOTE}") == ""


def test_line_endings_and_invisible_characters_do_not_matter():
    text = f"{ANSWER}\r\n\r\n\u200eOn Mon, 7 Apr 2025 at 09:12, Tom <tom@shop.example.com> wrote:\u200f\r\n> x\r\n"
    assert extract_reply(text) == ANSWER


# HTML replies: the quoted part marked by the client's own elements

HTML_REPLIES = {
    "gmail": '<div dir="ltr">{a}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, '
             '7 Apr 2025 at 09:12, Tom Olsen &lt;<a href="mailto:tom@shop.example.com">tom@shop.example.com</a>'
             '&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px '
             'solid rgb(204,204,204);padding-left:1ex"><div dir="ltr">Could you send it?</div></blockquote></div>',
    "gmail-signature": '<div dir="ltr">{a}<br clear="all"><div><br></div><span class="gmail_signature_prefix">'
                       '-- </span><br><div dir="ltr" class="gmail_signature">Anna Berg<br>Sales</div></div>',
    "apple": '<html><body dir="auto"><div>{a}</div><div><br><blockquote type="cite">On 7 Apr 2025, at 09:12, '
             'Tom Olsen &lt;tom@shop.example.com&gt; wrote:<br><br></blockquote></div><blockquote type="cite">'
             '<div>Could you send it?</div></blockquote></body></html>',
    "thunderbird": '<html><head><meta http-equiv="content-type" content="text/html; charset=UTF-8"></head><body>'
                   '<p>{a}</p><div class="moz-cite-prefix">On 07/04/2025 09:12, Tom Olsen wrote:<br></div>'
                   '<blockquote type="cite" cite="mid:abc@shop.example.com">Could you send it?</blockquote>'
                   '<pre class="moz-signature" cols="72">-- \nAnna Berg</pre></body></html>',
    "outlook-desktop": '<div class="WordSection1"><p class="MsoNormal">{a}<o:p></o:p></p><p class="MsoNormal">'
                       '<o:p>&nbsp;</o:p></p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt '
                       '0cm 0cm 0cm"><p class="MsoNormal"><b><span lang="EN-US">From:</span></b><span lang="EN-US"> '
                       'Tom Olsen &lt;tom@shop.example.com&gt; <br><b>Sent:</b> Monday, April 7, 2025 9:12 AM<br>'
                       '<b>To:</b> Anna Berg<br><b>Subject:</b> Quote<o:p></o:p></span></p></div><p class="MsoNormal">'
                       'Could you send it?<o:p></o:p></p></div>',
    "outlook-web": '<div dir="ltr">{a}</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" '
                   'tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>Von:</b> '
                   'Tom Olsen &lt;tom@shop.example.com&gt;<br><b>Gesendet:</b> Montag, 7. April 2025 09:12<br>'
                   '<b>An:</b> Anna Berg<br><b>Betreff:</b> Angebot</font><div>&nbsp;</div></div><div>Könnten Sie '
                   'das Angebot senden?</div>',
    "yahoo": '<div class="ydp1"><div>{a}</div></div><div id="yahoo_quoted_123" class="yahoo_quoted"><div>On Monday, '
             'April 7, 2025, 09:12:33 AM GMT+2, Tom Olsen &lt;tom@shop.example.com&gt; wrote:</div><div><br></div>'
             '<div>Could you send it?</div></div>',
    "mail-ru": '<HTML><BODY><div>{a}</div><br><br>Понедельник, 7 апреля 2025, 9:12 +03:00 от Tom Olsen &lt;'
               '<a href="mailto:tom@shop.example.com">tom@shop.example.com</a>&gt;:<br><blockquote style="border-left:'
               '1px solid #0857A6; margin:10px; padding:0 0 0 10px;"><div>Пришлите, пожалуйста.</div></blockquote>'
               '</BODY></HTML>',
    "yandex": '<div>{a}</div><div>&nbsp;</div><div>07.04.2025, 09:12, "Tom Olsen" &lt;tom@shop.example.com&gt;:'
              '</div><blockquote><div>Пришлите, пожалуйста.</div></blockquote>',
    "zimbra": '<html><body><div style="font-family: arial">{a}<br><br><hr id="zwchr"><b>From: </b>'
              'tom@shop.example.com<br><b>To: </b>anna@client.example<br><b>Sent: </b>Monday, April 7, 2025 9:12:00 AM'
              '<br><b>Subject: </b>Quote<br><br>Could you send it?</div></body></html>',
}


@pytest.mark.parametrize("html", HTML_REPLIES.values(), ids=HTML_REPLIES.keys())
def test_html_replies_of_real_clients(html):
    assert reply_text("", html.replace("{a}", ANSWER)) == ANSWER


def test_html_bottom_posted_and_interleaved():
    html = ('<div class="moz-cite-prefix">On 07/04/2025 09:12, Tom Olsen wrote:<br></div><blockquote type="cite">'
            'Can you deliver by May?</blockquote><p>Yes, by 12 May.</p><blockquote type="cite">And the colour?'
            '</blockquote><p>Dark grey.</p>')
    assert reply_text("", html) == "Yes, by 12 May.\nDark grey."


def test_html_indentation_blockquote_before_the_quote_is_kept():
    html = ('<div>Reply</div><blockquote>Indented</blockquote><div>On Mon, 7 Apr 2025, Tom &lt;tom@x.example&gt; '
            'wrote:</div><blockquote>old</blockquote>')
    assert reply_text("", html) == "Reply\nIndented"


def test_html_forward_with_no_note_is_kept_as_text():
    html = ('<div>Begin forwarded message:</div><br><blockquote type="cite"><div><b>From: </b>Tom Olsen '
            '&lt;tom@shop.example.com&gt;<br><b>Subject: </b>Quote</div><div>Could you send it?</div></blockquote>')
    assert reply_text("", html) == ("Begin forwarded message:\n\nFrom: Tom Olsen <tom@shop.example.com>\n"
                                    "Subject: Quote\nCould you send it?")


def test_the_text_part_is_read_when_there_is_one():
    raw = (b"From: a@x.test\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=B\n\n--B\n"
           b"Content-Type: text/plain; charset=utf-8\n\nFine.\n\nOn Mon, 7 Apr 2025, Tom <t@x.test> wrote:\n> q\n"
           b"--B\nContent-Type: text/html; charset=utf-8\n\n<p>Other</p>\n--B--\n")
    assert parse(raw).reply_text == "Fine."


# Bounded: every shape is read in one pass (these took minutes when a pattern backtracked)

def test_long_runs_of_blank_and_white_space_lines():
    assert extract_reply("Thanks\n" + "\n" * 40_000 + "On Mon, 1 Dec 2025, Ann <a@x.test> wrote:\n> old\n") == "Thanks"
    assert extract_reply("Thanks\n" + " \t \n" * 20_000) == "Thanks"
    assert extract_reply("Thanks" + " " * 100_000 + "\n") == "Thanks"


def test_many_candidate_headers_and_quote_levels():
    many = "On Mon, 1 Dec 2025, Ann <a@x.test> wrote:\n" * 5_000
    assert extract_reply("Thanks\n" + many) == "Thanks"
    levels = "".join(">" * i + " old\n" for i in range(1, 2_000))
    assert extract_reply("Thanks\n" + levels) == "Thanks"
    colons = ("a" * 399 + ":\n") * 400
    assert extract_reply(colons) == colons.strip()


def test_input_beyond_the_cap_is_not_read_and_the_message_says_so():
    text = "Thanks\n" + "x" * (2 * MAX_REPLY_INPUT)
    assert len(extract_reply(text)) <= MAX_REPLY_INPUT
    parsed = parse(b"From: a@x.test\nContent-Type: text/plain\n\n" + text.encode())
    assert parsed.reply_text.startswith("Thanks") and any("reply text" in d for d in parsed.defects)
    assert not any("reply text" in d for d in parse(b"From: a@x.test\n\nThanks\n").defects)
