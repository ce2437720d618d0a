"""Russian and English function words: never a label, however often an image's text repeats
them, and never a search term (a query's "the" or "на" matches every post).

Labels take words of four letters or more; search terms of two or more (``_SHORT``); inflected
forms are listed because labels are not lemmatised.
"""

_RUSSIAN = """
будет будем будете будут буду была были было быть бывает более больше будто вами ваша ваше
ваши вашего весь всего всех всем всеми всю вся всё все всегда вдруг везде вместо вниз внизу
вокруг воты впрочем время всего высоко где-то давай даже далее давно деле для должен должна
должно должны если есть ещё еще зачем здесь иметь ими их когда кого кому конечно который
которая которое которые которых котором которой куда либо лишь между менее меня мне много
может можем можете можно мной надо наша наше наши нашего нашей него нее неё ней нельзя нему
нибудь никогда ничего них ними ночью однако она они оно опять очень перед почему потому
потом после почти при про раз разве самая самое самые самый свое своё своей свои своих свою
себе себя сейчас сегодня сказал сказала сказать слишком снова совсем так такая также такие
такой там твой твоя твоё тебе тебя теперь тогда того тоже той только том тому тот туда тут
уже хотя хоть чего чему через чтоб чтобы чуть эта эти этим этих это этого этой этом этому
этот этою эту один одна одно одни одного одной нужно нужен нужна вот вон вообще всё-таки
ведь или либо тоже так как где кто что чем при над под без из-за из-под около возле среди
"""

_ENGLISH = """
about above after again against also although among another anyone anything around because
been before being below between both came come could does doing done down during each either
else even ever every from further gets going gone have having hence here hers herself himself
however into itself just like made make many more most much must myself near never next none
only onto other others ought ours ourselves over own per please quite rather really said same
shall she should since some something such than that thats their theirs them themselves then
there these they this those though through thus till together too toward towards under until
upon very want was were what whatever when where whether which while whom whose will with
within without would yeah yes you your yours yourself yourselves also anyway back well
"""

_SHORT = """
без бы был в во вы да до его ее её ей же за и из или им их к как ко ли мы на над не нет ни но
ну о об он от по под при с со та те то ту ты у уж чем что эти я
a am an and are as at be by do for he her him his how i if in is it its me my no not of on or
our so than that the to up us we who why
"""

STOP_WORDS: frozenset[str] = frozenset((_RUSSIAN + _ENGLISH + _SHORT).split())
