"""parse_user_agent: the client rule table plus ua-parser, on realistic user agents of every category."""

from __future__ import annotations

import dataclasses
import re

import pytest

from pipeline.enrichment.useragent import (
    CLIENT_CATEGORIES,
    CLIENT_RULES,
    PLATFORMS,
    UserAgentInfo,
    parse_many,
    parse_user_agent,
)

CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")

# ua, client_category, is_automated, browser_family, os_family, platform, client_name
CASES = [
    # Browsers
    (CHROME_WIN, "browser", False, "Chrome", "Windows", "desktop", None),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", "browser", False, "Safari", "Mac OS X", "desktop", None),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
     "browser", False, "Firefox", "Linux", "desktop", None),
    (CHROME_WIN + " Edg/131.0.2903.86", "browser", False, "Edge", "Windows", "desktop", None),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "browser", False, "Chrome", "Chrome OS", "desktop", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "browser", False, "Mobile Safari", "iOS", "mobile", None),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
     "Mobile/15E148 Safari/604.1", "browser", False, "Mobile Safari", "iOS", "tablet", None),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.6778.104 Mobile Safari/537.36", "browser", False, "Chrome Mobile", "Android", "mobile", None),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
     "Safari/537.36", "browser", False, "Chrome", "Android", "tablet", None),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 "
     "Safari/537.36", "browser", True, "HeadlessChrome", "Linux", "desktop", None),
    # Desktop apps
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Claude/0.7.5 "
     "Chrome/128.0.6613.186 Electron/32.2.5 Safari/537.36",
     "desktop_app", False, "Claude desktop", "Mac OS X", "desktop", "Claude desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Claude/0.9.3 "
     "Chrome/130.0.6723.170 Electron/33.2.1 Safari/537.36",
     "desktop_app", False, "Claude desktop", "Windows", "desktop", "Claude desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.97 "
     "Chrome/128.0.6613.186 Electron/32.2.2 Safari/537.36",
     "desktop_app", False, "Electron", "Mac OS X", "desktop", None),
    # Mobile apps
    ("Claude/1.241105.0 (iPhone; iOS 18.1; Scale/3.00)", "mobile_app", False, "Claude iOS", "iOS", "mobile",
     "Claude iOS"),
    ("Claude/1.241105.0 (iPad; iOS 17.6; Scale/2.00)", "mobile_app", False, "Claude iOS", "iOS", "tablet",
     "Claude iOS"),
    ("Claude/1.250101.0 (com.anthropic.claude; build:41; Android 14) okhttp/4.12.0",
     "mobile_app", False, "Claude Android", "Android", "mobile", "Claude Android"),
    # SDKs and CLIs
    ("claude-cli/1.0.51 (external, cli)", "sdk_cli", True, "claude-code", None, "desktop", "claude-code"),
    ("claude-code/2.0.14", "sdk_cli", True, "claude-code", None, "desktop", "claude-code"),
    ("anthropic-python/0.40.0", "sdk_cli", True, "anthropic-python", None, "server", "anthropic-python"),
    ("Anthropic/Python 0.39.0", "sdk_cli", True, "anthropic-python", None, "server", "anthropic-python"),
    ("anthropic-typescript/0.32.1", "sdk_cli", True, "anthropic-typescript", None, "server",
     "anthropic-typescript"),
    ("Anthropic/JS 0.32.1", "sdk_cli", True, "anthropic-typescript", None, "server", "anthropic-typescript"),
    # Scripting libraries and HTTP tools
    ("python-requests/2.32.3", "scripting_library", True, "python-requests", None, "server", "python-requests"),
    ("python-httpx/0.27.2", "scripting_library", True, "python-httpx", None, "server", "python-httpx"),
    ("Python-urllib/3.11", "scripting_library", True, "python-urllib", None, "server", "python-urllib"),
    ("Python/3.11 aiohttp/3.10.10", "scripting_library", True, "aiohttp", None, "server", "aiohttp"),
    ("curl/8.7.1", "scripting_library", True, "curl", None, "server", "curl"),
    ("Wget/1.21.4", "scripting_library", True, "wget", None, "server", "wget"),
    ("Go-http-client/2.0", "scripting_library", True, "go-http-client", None, "server", "go-http-client"),
    ("axios/1.7.7", "scripting_library", True, "axios", None, "server", "axios"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "scripting_library", True, "node-fetch", None,
     "server", "node-fetch"),
    ("okhttp/4.12.0", "scripting_library", True, "okhttp", None, "server", "okhttp"),
    ("Java-http-client/17.0.2", "scripting_library", True, "java-httpclient", None, "server", "java-httpclient"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "scripting_library", True, "apache-httpclient", None, "server",
     "apache-httpclient"),
    ("PostmanRuntime/7.42.0", "scripting_library", True, "postman", None, "server", "postman"),
    ("Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.6",
     "scripting_library", True, "powershell", "Windows", "desktop", "powershell"),
    # Scanners and bots
    ("sqlmap/1.8.11#stable (https://sqlmap.org)", "bot_scanner", True, "sqlmap", None, "server", "sqlmap"),
    ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "bot_scanner", True, "nuclei", None,
     "server", "nuclei"),
    ("Mozilla/5.0 zgrab/0.x", "bot_scanner", True, "zgrab", None, "server", "zgrab"),
    ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "bot_scanner", True, "masscan", None, "server",
     "masscan"),
    ("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", "bot_scanner", True,
     "nmap", None, "server", "nmap"),
    ("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)", "bot_scanner", True, "nikto", None, "server",
     "nikto"),
    ("WPScan v3.8.27 (https://wpscan.com/wordpress-security-scanner)", "bot_scanner", True, "wpscan", None,
     "server", "wpscan"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot_scanner", True, "Googlebot",
     None, "server", "Googlebot"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
     " Chrome/116.0.1938.76 Safari/537.36", "bot_scanner", True, "bingbot", None, "server", "bingbot"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
     "bot_scanner", True, "ClaudeBot", None, "server", "ClaudeBot"),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.6778.139 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot_scanner", True, "Googlebot", "Android", "server", "Googlebot"),
    # Unknown
    ("MyInternalTool/2.3", "unknown", None, None, None, "unknown", None),
    ("", "unknown", None, None, None, "unknown", None),
    ("   ", "unknown", None, None, None, "unknown", None),
    (None, "unknown", None, None, None, "unknown", None),
]


@pytest.mark.parametrize("ua,category,automated,browser,os_family,platform,client_name", CASES,
                         ids=[(c[0] or repr(c[0]))[:60] for c in CASES])
def test_user_agent_table(ua, category, automated, browser, os_family, platform, client_name):
    info = parse_user_agent(ua)
    assert info.raw == ua
    assert info.client_category == category
    assert info.is_automated is automated
    assert info.browser_family == browser
    assert info.os_family == os_family
    assert info.platform == platform
    assert info.client_name == client_name


def test_table_covers_every_category():
    assert {c[1] for c in CASES} == set(CLIENT_CATEGORIES)


@pytest.mark.parametrize("ua,browser_version,os_version,device", [
    (CHROME_WIN, "131.0.0", "10", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "18.1", "18.1", "iPhone"),
    ("Claude/1.241105.0 (iPhone; iOS 18.1; Scale/3.00)", "1.241105.0", "18.1", "iPhone"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Claude/0.7.5 "
     "Chrome/128.0.6613.186 Electron/32.2.5 Safari/537.36", "0.7.5", "10.15.7", "Mac"),
    ("anthropic-python/0.40.0", "0.40.0", None, None),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "2.1", None, "Spider"),
])
def test_versions_and_device(ua, browser_version, os_version, device):
    info = parse_user_agent(ua)
    assert (info.browser_version, info.os_version, info.device_family) == (browser_version, os_version, device)


def test_claudebot_is_not_the_claude_app():
    info = parse_user_agent("Mozilla/5.0 (compatible; ClaudeBot/1.0; +claudebot@anthropic.com) Electron/1.0")
    assert info.client_name != "Claude desktop"


def test_is_automated_is_none_exactly_when_unknown():
    for ua, *_ in CASES:
        info = parse_user_agent(ua)
        assert (info.is_automated is None) == (info.client_category == "unknown"), ua
        assert info.platform in PLATFORMS and info.client_category in CLIENT_CATEGORIES


def test_rule_table_is_well_formed():
    for pattern, name, category, automated, platform, _domains in CLIENT_RULES:
        re.compile(pattern)
        assert category in CLIENT_CATEGORIES and category != "unknown", pattern
        assert isinstance(automated, bool)
        assert platform is None or platform in PLATFORMS
    # Every named client in the rules is exercised by the table above or by the checks below.
    named = {name for _, name, *_ in CLIENT_RULES if name}
    tested = {c[6] for c in CASES}
    untested = named - tested
    assert untested <= {"gobuster", "ffuf", "dirbuster", "censys", "expanse", "nessus", "openvas", "acunetix",
                        "anthropic-go", "anthropic-java", "python-urllib3", "java", "guzzle", "libwww-perl",
                        "faraday"}, untested


@pytest.mark.parametrize("ua,name", [
    ("gobuster/3.6", "gobuster"),
    ("Fuzz Faster U Fool v2.1.0-dev", "ffuf"),
    ("Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)", "censys"),
    ("Anthropic/Go 1.4.0", "anthropic-go"),
    ("Anthropic/Java 2.1.0", "anthropic-java"),
    ("Java/17.0.9", "java"),
    ("GuzzleHttp/7", "guzzle"),
])
def test_more_rule_clients(ua, name):
    assert parse_user_agent(ua).client_name == name


def test_parse_many_is_cached_and_ordered():
    uas = [CHROME_WIN, "curl/8.7.1", None, CHROME_WIN]
    infos = parse_many(uas)
    assert [i.raw for i in infos] == uas
    assert infos[0] is infos[3]
    assert parse_user_agent("curl/8.7.1") is infos[1]


def test_info_is_frozen_and_row_shaped():
    info = parse_user_agent("curl/8.7.1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.client_category = "browser"
    names = [name for name, _ in UserAgentInfo.COLUMNS]
    assert names == [f.name for f in dataclasses.fields(UserAgentInfo)]
    assert info.as_row() == tuple(info.as_dict()[n] for n in names)
    assert info.as_dict()["client_name"] == "curl"
