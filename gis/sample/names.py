"""Generated names: villages from syllable lists, people from surname and given-name characters.

Every name is drawn with the caller's ``numpy`` generator, so the same seed gives the same names.
The lists are ordinary place-name morphemes and common characters, combined at random; no real
village or person is listed here.
"""

from __future__ import annotations

import numpy as np

# (hanzi, pinyin) pairs. First syllables: directions, sizes, colours, trees, family names —
# the usual first halves of Jiangnan village names.
_FIRST = (
    ("东", "dong"), ("西", "xi"), ("南", "nan"), ("北", "bei"), ("上", "shang"),
    ("下", "xia"), ("前", "qian"), ("后", "hou"), ("大", "da"), ("小", "xiao"),
    ("新", "xin"), ("老", "lao"), ("黄", "huang"), ("石", "shi"), ("青", "qing"),
    ("白", "bai"), ("高", "gao"), ("长", "chang"), ("杨", "yang"), ("柳", "liu"),
    ("桂", "gui"), ("枫", "feng"), ("竹", "zhu"), ("松", "song"), ("梅", "mei"),
    ("桃", "tao"), ("李", "li"), ("王", "wang"), ("徐", "xu"), ("毛", "mao"),
    ("郑", "zheng"), ("余", "yu"), ("姜", "jiang"), ("汪", "wang"), ("方", "fang"),
    ("叶", "ye"), ("金", "jin"), ("银", "yin"), ("龙", "long"), ("凤", "feng"),
    ("云", "yun"), ("溪", "xi"), ("双", "shuang"), ("三", "san"), ("五", "wu"),
    ("和", "he"), ("安", "an"), ("丰", "feng"), ("泉", "quan"), ("茶", "cha"),
)  # fmt: skip
# Second syllables: landforms and settlement words (坞 a hollow, 畈 a field plain, 垄 a ridge…).
_SECOND = (
    ("溪", "xi"), ("塘", "tang"), ("坞", "wu"), ("岭", "ling"), ("口", "kou"),
    ("头", "tou"), ("坑", "keng"), ("源", "yuan"), ("山", "shan"), ("田", "tian"),
    ("湾", "wan"), ("桥", "qiao"), ("畈", "fan"), ("埠", "bu"), ("垄", "long"),
    ("岙", "ao"), ("庄", "zhuang"), ("林", "lin"), ("阳", "yang"), ("家", "jia"),
    ("墩", "dun"), ("坂", "ban"), ("塍", "cheng"), ("湖", "hu"), ("亭", "ting"),
    ("铺", "pu"), ("岗", "gang"), ("洲", "zhou"), ("峰", "feng"), ("圩", "wei"),
)  # fmt: skip

# Common surnames, with several frequent in western Zhejiang (毛, 徐, 郑, 祝, 余, 姜…).
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林郑毛余姜祝汪叶方程傅邵戴蓝童江占"
# Characters used in given names; one or two are drawn.
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文兰红玉梅林海波辉晓燕飞婷"


def village_names(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (Chinese, English) village names such as ("东坞村", "Dongwu Village")."""
    if count > len(_FIRST) * len(_SECOND):
        raise ValueError(f"cannot make {count} distinct village names")
    # Draw the combinations without replacement, so names never repeat within one call.
    picks = rng.choice(len(_FIRST) * len(_SECOND), size=count, replace=False)
    names = []
    for pick in picks.tolist():
        first, second = _FIRST[pick // len(_SECOND)], _SECOND[pick % len(_SECOND)]
        # A doubled character (溪溪) reads badly: use 里 for the second one instead.
        if first[0] == second[0]:
            second = ("里", "li")
        names.append((f"{first[0]}{second[0]}村", f"{(first[1] + second[1]).capitalize()} Village"))
    return names


def person_names(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` generated Chinese personal names (surname + one or two given characters)."""
    surnames = rng.integers(0, len(SURNAMES), size=count)
    first = rng.integers(0, len(GIVEN), size=count)
    second = rng.integers(0, len(GIVEN), size=count)
    two = rng.random(count) < 0.7
    return [
        SURNAMES[s] + GIVEN[f] + (GIVEN[g] if t else "")
        for s, f, g, t in zip(
            surnames.tolist(), first.tolist(), second.tolist(), two.tolist(), strict=True
        )
    ]
