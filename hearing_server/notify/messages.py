"""The texts of the messages to parties, in Kazakh, Russian and English, filled with the hearing's facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hearing_server.domain.notification import Channel, NotificationKind


@dataclass(frozen=True)
class HearingFacts:
    """What a message says about the hearing and the party (``link`` empty when the message has none)."""

    court: str
    case_number: str
    title: str
    courtroom: str
    start: datetime
    zone: str
    party_name: str
    link: str
    act_title: str = ""


@dataclass(frozen=True)
class Template:
    """A subject (e-mail), an e-mail body and an SMS text, with ``{placeholders}``."""

    subject: str
    body: str
    sms: str


_FOOTER = {
    "kk": "Бұл хабарлама автоматты түрде жіберілді, оған жауап берудің қажеті жоқ.",
    "ru": "Это сообщение отправлено автоматически, отвечать на него не нужно.",
    "en": "This message was sent automatically; please do not reply to it.",
}

TEMPLATES: dict[str, dict[NotificationKind, Template]] = {
    "kk": {
        NotificationKind.INVITATION: Template(
            subject="{court}: № {case} іс бойынша сот отырысы, {when}",
            body=(
                "Құрметті {name}!\n\n"
                "{court} сізді № {case} іс ({title}) бойынша сот отырысына бейнебайланыс арқылы қатысуға "
                "шақырады.\n\n"
                "Күні мен уақыты: {when} ({zone})\n"
                "Зал: {courtroom}\n\n"
                "Телефоннан немесе компьютерден жеке сілтемеңіз арқылы кіріңіз (оны басқаларға бермеңіз):\n"
                "{link}\n\n"
                "Сот отырысы жазылады."
            ),
            sms="{court}: № {case} іс бойынша сот отырысы {when} ({zone}). Сілтемеңіз: {link}",
        ),
        NotificationKind.REMINDER: Template(
            subject="Еске салу: № {case} іс бойынша сот отырысы, {when}",
            body=(
                "Құрметті {name}!\n\n"
                "№ {case} іс ({title}) бойынша сот отырысы {when} ({zone}) өтетінін еске саламыз. "
                "Зал: {courtroom}.\n\n"
                "Кіруге арналған сілтемеңіз:\n{link}"
            ),
            sms="Еске салу: № {case} іс бойынша сот отырысы {when} ({zone}). Сілтемеңіз: {link}",
        ),
        NotificationKind.RESCHEDULED: Template(
            subject="{court}: № {case} іс бойынша сот отырысы ауыстырылды, {when}",
            body=(
                "Құрметті {name}!\n\n"
                "№ {case} іс ({title}) бойынша сот отырысы ауыстырылды. "
                "Жаңа күні мен уақыты: {when} ({zone}). Зал: {courtroom}.\n\n"
                "Кіруге арналған сілтемеңіз өзгерген жоқ:\n{link}"
            ),
            sms="{court}: № {case} іс бойынша сот отырысы {when} ({zone}) уақытына ауыстырылды. {link}",
        ),
        NotificationKind.CANCELLED: Template(
            subject="{court}: № {case} іс бойынша {when} сот отырысы болмайды",
            body=(
                "Құрметті {name}!\n\n"
                "{when} ({zone}) тағайындалған № {case} іс ({title}) бойынша сот отырысы болмайды. "
                "Сілтемеңіз енді жарамсыз. Жаңа күні туралы сізге бөлек хабарланады."
            ),
            sms="{court}: № {case} іс бойынша {when} сот отырысы болмайды.",
        ),
        NotificationKind.ACT: Template(
            subject="{court}: № {case} іс бойынша сот актісі: {act}",
            body=(
                "Құрметті {name}!\n\n"
                "№ {case} іс ({title}) бойынша сот актісіне соттың электрондық қолтаңбасымен қол қойылды: "
                "{act}.\n\n"
                "Оны жеке сілтемеңіз арқылы ашылатын беттен жүктеп алуға болады:\n{link}"
            ),
            sms="{court}: № {case} іс бойынша сот актісі ({act}). Жүктеп алу: {link}",
        ),
    },
    "ru": {
        NotificationKind.INVITATION: Template(
            subject="{court}: судебное заседание по делу № {case}, {when}",
            body=(
                "Уважаемый(ая) {name}!\n\n"
                "{court} приглашает вас принять участие в судебном заседании по делу № {case} ({title}) "
                "по видеосвязи.\n\n"
                "Дата и время: {when} ({zone})\n"
                "Зал: {courtroom}\n\n"
                "Войдите с телефона или компьютера по вашей личной ссылке (не передавайте её другим):\n"
                "{link}\n\n"
                "Заседание записывается."
            ),
            sms="{court}: заседание по делу № {case} {when} ({zone}). Ваша ссылка: {link}",
        ),
        NotificationKind.REMINDER: Template(
            subject="Напоминание: судебное заседание по делу № {case}, {when}",
            body=(
                "Уважаемый(ая) {name}!\n\n"
                "Напоминаем, что судебное заседание по делу № {case} ({title}) состоится {when} ({zone}). "
                "Зал: {courtroom}.\n\n"
                "Ваша ссылка для входа:\n{link}"
            ),
            sms="Напоминание: заседание по делу № {case} {when} ({zone}). Ваша ссылка: {link}",
        ),
        NotificationKind.RESCHEDULED: Template(
            subject="{court}: заседание по делу № {case} перенесено на {when}",
            body=(
                "Уважаемый(ая) {name}!\n\n"
                "Судебное заседание по делу № {case} ({title}) перенесено. "
                "Новые дата и время: {when} ({zone}). Зал: {courtroom}.\n\n"
                "Ваша ссылка для входа прежняя:\n{link}"
            ),
            sms="{court}: заседание по делу № {case} перенесено на {when} ({zone}). {link}",
        ),
        NotificationKind.CANCELLED: Template(
            subject="{court}: заседание по делу № {case} ({when}) отменено",
            body=(
                "Уважаемый(ая) {name}!\n\n"
                "Судебное заседание по делу № {case} ({title}), назначенное на {when} ({zone}), отменено. "
                "Ссылка для входа больше не действует. О новой дате вам сообщат отдельно."
            ),
            sms="{court}: заседание по делу № {case} {when} отменено.",
        ),
        NotificationKind.ACT: Template(
            subject="{court}: судебный акт по делу № {case}: {act}",
            body=(
                "Уважаемый(ая) {name}!\n\n"
                "По делу № {case} ({title}) подписан электронной подписью суда судебный акт: {act}.\n\n"
                "Его можно скачать на странице вашей личной ссылки:\n{link}"
            ),
            sms="{court}: судебный акт по делу № {case} ({act}). Скачать: {link}",
        ),
    },
    "en": {
        NotificationKind.INVITATION: Template(
            subject="{court}: hearing in case {case}, {when}",
            body=(
                "Dear {name},\n\n"
                "{court} invites you to take part by video in the hearing of case {case} ({title}).\n\n"
                "Date and time: {when} ({zone})\n"
                "Courtroom: {courtroom}\n\n"
                "Join from your phone or computer with your personal link (do not share it):\n"
                "{link}\n\n"
                "The hearing is recorded."
            ),
            sms="{court}: hearing in case {case} on {when} ({zone}). Your link: {link}",
        ),
        NotificationKind.REMINDER: Template(
            subject="Reminder: hearing in case {case}, {when}",
            body=(
                "Dear {name},\n\n"
                "This is a reminder that the hearing of case {case} ({title}) takes place on {when} "
                "({zone}). "
                "Courtroom: {courtroom}.\n\n"
                "Your link to join:\n{link}"
            ),
            sms="Reminder: hearing in case {case} on {when} ({zone}). Your link: {link}",
        ),
        NotificationKind.RESCHEDULED: Template(
            subject="{court}: hearing in case {case} moved to {when}",
            body=(
                "Dear {name},\n\n"
                "The hearing of case {case} ({title}) has been moved. "
                "New date and time: {when} ({zone}). Courtroom: {courtroom}.\n\n"
                "Your link to join stays the same:\n{link}"
            ),
            sms="{court}: hearing in case {case} moved to {when} ({zone}). {link}",
        ),
        NotificationKind.CANCELLED: Template(
            subject="{court}: hearing in case {case} on {when} is cancelled",
            body=(
                "Dear {name},\n\n"
                "The hearing of case {case} ({title}) set for {when} ({zone}) is cancelled. "
                "Your link no longer works. You will be told the new date separately."
            ),
            sms="{court}: hearing in case {case} on {when} is cancelled.",
        ),
        NotificationKind.ACT: Template(
            subject="{court}: court act in case {case}: {act}",
            body=(
                "Dear {name},\n\n"
                "A court act in case {case} ({title}) has been signed with the court's electronic signature: "
                "{act}.\n\n"
                "You can download it from the page of your personal link:\n{link}"
            ),
            sms="{court}: court act in case {case} ({act}). Download: {link}",
        ),
    },
}


def format_when(start: datetime, zone: str) -> str:
    """The start in the court's time zone as people write it in all three languages: 05.03.2026 10:00."""
    return start.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y %H:%M")


def render(kind: NotificationKind, channel: Channel, language: str, facts: HearingFacts) -> tuple[str, str]:
    """The subject and the exact text of a message (an SMS has no subject of its own)."""
    template = TEMPLATES.get(language, TEMPLATES["ru"])[kind]
    values = {
        "court": facts.court,
        "case": facts.case_number,
        "title": facts.title,
        "courtroom": facts.courtroom,
        "when": format_when(facts.start, facts.zone),
        "zone": facts.zone,
        "name": facts.party_name,
        "link": facts.link,
        "act": facts.act_title,
    }
    subject = template.subject.format_map(values)
    if channel is Channel.SMS:
        return subject, template.sms.format_map(values)
    footer = _FOOTER.get(language, _FOOTER["ru"])
    return subject, template.body.format_map(values) + "\n\n" + footer + "\n"
