"""The words mail clients write around a quoted message, in the languages business mail is written
in: what `replytext` reads quote headers, header blocks, separators and mobile signatures by.

Each list holds the forms the clients' own localisations produce (Gmail, Outlook, Apple Mail,
Thunderbird, Yahoo, mail.ru, Yandex, phone mail apps); the structure around them (a date, an
address, a colon at the end, a block of several fields) is checked by `replytext`, so a word here
alone never makes a line a header.
"""

from __future__ import annotations

import re

#: "wrote" in a quote header ("On … Tom <…> wrote:"), lower case; matched as whole words in
#: alphabetic scripts, anywhere in CJK, Thai and Korean.
WROTE_WORDS = (
    "wrote", "writes", "sent",                                    # en
    "schrieb", "schreibt",                                        # de
    "a écrit", "a ecrit", "écrit",                                # fr
    "escribió", "escribio", "escrigué", "va escriure",            # es, ca
    "escreveu",                                                   # pt
    "ha scritto", "scrisse",                                      # it
    "schreef", "geschreven", "verzond",                           # nl
    "napisał", "napisała", "napisal", "pisze",                    # pl
    "napsal", "napsala", "napísal", "napísala",                   # cs, sk
    "написал", "написала", "пишет",                               # ru
    "пише", "написав",                                            # uk
    "написа",                                                     # bg
    "napisao", "napisala",                                        # hr, sr, bs, sl
    "skrev", "skriver", "skrifaði",                               # sv, da, no, is
    "kirjoitti", "írta", "a scris", "yazdı",                      # fi, hu, ro, tr
    "έγραψε", "rakstīja", "rašė", "parašė", "kirjutas",           # el, lv, lt, et
    "כתב", "כתבה", "كتب", "نوشت", "ने लिखा", "लिखा",              # he, ar, fa, hi
    "menulis", "đã viết", "viết",                                 # id, ms, vi
)
#: the same for scripts without spaces between words (matched anywhere)
WROTE_INFIXES = ("写道", "寫道", "写到", "寫到", "書きました", "님이 작성", "작성:", "님이 씀", "เขียน")

#: words that begin a quote header ("On …", "Am …", "W dniu …"), case as written
HEADER_OPENERS = (
    "On", "At", "Le", "Am", "El", "Em", "Op", "Il", "Il giorno", "W dniu", "Dnia", "Den", "På", "Dne",
    "Vào", "Lúc", "В", "Στις", "Pada", "Pada tanggal", "Kun", "Dana", "Pe", "在", "في",
)

#: header-block field names (Outlook "From:/Sent:/To:/Subject:" and forwards), lower case, by role
FIELDS = {
    "from": (
        "from", "von", "de", "da", "van", "fra", "från", "od", "от", "від", "kimden", "gönderen",
        "lähettäjä", "feladó", "από", "发件人", "發件人", "寄件者", "差出人", "보낸 사람", "מאת", "من", "dari",
        "từ", "saatja", "no", "sūtītājs", "nuo", "siuntėjas", "de la", "expéditeur", "remitente", "afzender",
        "absender", "nadawca", "odesílatel", "отправитель", "mittente", "pengirim", "प्रेषक", "จาก",
        "šalje", "poslao", "frá"),
    "date": (
        "sent", "date", "gesendet", "datum", "envoyé", "envoyé le", "date d'envoi", "enviado", "enviada",
        "enviado el", "enviada em", "enviado em", "fecha", "data", "inviato", "verzonden", "verstuurd",
        "wysłano", "wysłane", "data wysłania", "отправлено", "дата", "надіслано", "skickat", "sendt",
        "dato", "lähetetty", "päivämäärä", "odesláno", "odoslané", "dátum", "elküldve", "küldve", "trimis",
        "gönderildi", "gönderilme", "tarih", "στάλθηκε", "ημερομηνία", "发送时间", "發送時間", "日期",
        "寄件日期", "时间", "時間", "送信日時", "日付", "보낸 날짜", "날짜", "تاريخ الإرسال", "التاريخ",
        "נשלח", "תאריך", "dikirim", "tanggal", "đã gửi", "ngày", "saadetud", "kuupäev", "nosūtīts",
        "datums", "išsiųsta", "poslano", "poslato", "изпратено", "sent at", "भेजा गया", "दिनांक"),
    "to": (
        "to", "an", "à", "a", "para", "aan", "til", "till", "do", "кому", "kime", "vastaanottaja",
        "címzett", "către", "προς", "收件人", "收件者", "宛先", "받는 사람", "אל", "إلى", "kepada", "đến",
        "tới", "adressaat", "kam", "komu", "za", "prima", "до", "per a", "destinataire", "destinatario",
        "empfänger", "ontvanger", "odbiorca", "příjemce", "получатель", "alıcı", "प्रति", "ถึง",
        "reply-to", "antwort an", "répondre à", "responder a"),
    "cc": (
        "cc", "bcc", "kopie", "kopia", "копия", "копія", "kopio", "kopi", "bilgi", "κοιν", "抄送", "副本",
        "참조", "עותק", "نسخة", "dw", "másolat", "másolatot kap", "kópia"),
    "subject": (
        "subject", "betreff", "objet", "asunto", "assunto", "oggetto", "onderwerp", "temat", "тема",
        "ämne", "emne", "aihe", "předmět", "predmet", "tárgy", "subiect", "konu", "θέμα", "主题", "主旨",
        "件名", "제목", "נושא", "الموضوع", "subjek", "perihal", "chủ đề", "teema", "tēma", "tema", "относно",
        "sujet", "assumpte", "betreft", "विषय", "เรื่อง"),
}
FIELD_ROLE = {name: role for role, names in FIELDS.items() for name in names}

#: the text of an "-----Original Message-----" separator, lower case
ORIGINAL_MESSAGE = frozenset((
    "original message", "reply message", "ursprüngliche nachricht", "antwort nachricht",
    "originalnachricht", "message d'origine", "message original", "mensaje original", "mensagem original",
    "messaggio originale", "oorspronkelijk bericht", "origineel bericht", "oprindelig meddelelse",
    "opprinnelig melding", "ursprungligt meddelande", "originalmeddelande", "alkuperäinen viesti",
    "wiadomość oryginalna", "oryginalna wiadomość", "původní zpráva", "pôvodná správa", "eredeti üzenet",
    "mesaj original", "mesajul original", "orijinal mesaj", "özgün ileti", "исходное сообщение",
    "оригинальное сообщение", "вихідне повідомлення", "оригінальне повідомлення", "αρχικό μήνυμα",
    "原始邮件", "原始郵件", "元のメッセージ", "원본 메시지", "הודעה מקורית", "الرسالة الأصلية",
    "pesan asli", "tin nhắn gốc", "thư gốc", "sākotnējais ziņojums", "pradinis laiškas", "algne kiri",
    "izvorna poruka", "оригинално съобщение", "original melding",
))
#: the text of a forward marker ("---------- Forwarded message ---------", "Begin forwarded message:")
FORWARDED = frozenset((
    "forwarded message", "begin forwarded message", "forwarded by", "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht", "message transféré", "début du message réexpédié",
    "début du message transféré", "mensaje reenviado", "inicio del mensaje reenviado",
    "mensagem encaminhada", "início da mensagem reencaminhada", "mensagem reencaminhada",
    "messaggio inoltrato", "inizio messaggio inoltrato", "doorgestuurd bericht",
    "begin doorgestuurd bericht", "videresendt meddelelse", "videresendt melding",
    "vidarebefordrat meddelande", "välitetty viesti", "wiadomość przekazana", "przekazana wiadomość",
    "přeposlaná zpráva", "preposlaná správa", "továbbított üzenet", "mesaj redirecționat",
    "iletilen ileti", "iletilmiş ileti", "пересылаемое сообщение", "пересланное сообщение",
    "начало переадресованного сообщения", "переслане повідомлення", "προωθημένο μήνυμα",
    "转发的邮件", "轉寄的郵件", "転送されたメッセージ", "전달된 메시지", "הודעה שהועברה",
    "رسالة معاد توجيهها", "pesan yang diteruskan", "tin nhắn đã chuyển tiếp", "pārsūtīts ziņojums",
    "persiųstas laiškas", "edastatud kiri", "proslijeđena poruka", "препратено съобщение",
))

#: the beginning of a phone or app signature line, lower case ("Sent from my iPhone")
MOBILE_SIGNATURES = (
    "sent from ", "sent from my ", "sent from outlook", "sent from yahoo mail", "sent from mail for windows",
    "sent from samsung", "sent from the all new aol", "sent from aol", "sent from acompli",
    "sent from blackberry", "sent from gmail", "sent from proton", "sent via ", "sent with ",
    "sent using ", "get outlook for ", "envoyé de mon ", "envoyé depuis mon ", "envoyé à partir de ",
    "envoyé de ", "obtenir outlook pour ", "von meinem ", "gesendet von meinem ", "gesendet von ",
    "gesendet mit ", "outlook für ", "enviado desde mi ", "enviado desde ", "obtener outlook para ",
    "enviado do meu ", "enviado de meu ", "enviado do ", "enviado de ", "inviato da ", "inviato dal mio ",
    "scarica outlook per ", "verzonden met ", "verzonden vanaf ", "verstuurd vanaf ", "verstuurd met ",
    "outlook voor ", "sendt fra min ", "sendt fra ", "skickat från min ", "skickat från ",
    "hämta outlook för ", "lähetetty ", "wysłane z ", "wysłano z ", "odesláno z ", "odoslané z ",
    "отправлено с ", "отправлено из ", "надіслано з ", "trimis de pe ", "trimis de ", "elküldve ",
    "iphone'umdan gönderildi", "ipad'imden gönderildi", "dikirim dari ", "gửi từ ", "saadetud minu ",
    "nosūtīts no ", "išsiųsta iš ", "poslano s ", "poslano iz ", "poslano sa ", "изпратено от ",
    "στάλθηκε από ", "נשלח מה", "أُرسلت من ", "أرسلت من ", "从我的", "发自我的", "發自我的",
    "iphoneから送信", "ipadから送信", "androidから送信", "내 iphone에서 보냄", "내 갤럭시",
)

WROTE = re.compile(
    r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(WROTE_WORDS, key=len, reverse=True)) + r")(?!\w)"
    r"|" + "|".join(re.escape(w) for w in WROTE_INFIXES), re.I)
OPENER = re.compile(r"(?:" + "|".join(re.escape(w) for w in sorted(HEADER_OPENERS, key=len, reverse=True))
                    + r")(?=\s)")
