"""Name pools for synthetic voters: common US names plus Latin-1 accented and punctuated ones."""

from __future__ import annotations

import numpy as np

# Ordered roughly by frequency; weights follow a Zipf curve so a few names dominate as in real files.
SURNAMES = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
    "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ",
    "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN",
    "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL",
    "CARTER", "ROBERTS", "GOMEZ", "PHILLIPS", "EVANS", "TURNER", "DIAZ", "PARKER", "CRUZ", "EDWARDS",
    "COLLINS", "REYES", "STEWART", "MORRIS", "MORALES", "MURPHY", "COOK", "ROGERS", "GUTIERREZ",
    "ORTIZ", "MORGAN", "COOPER", "PETERSON", "BAILEY", "REED", "KELLY", "HOWARD", "RAMOS", "KIM",
    "COX", "WARD", "RICHARDSON", "WATSON", "BROOKS", "CHAVEZ", "WOOD", "JAMES", "BENNETT", "GRAY",
    "MENDOZA", "RUIZ", "HUGHES", "PRICE", "ALVAREZ", "CASTILLO", "SANDERS", "PATEL", "MYERS", "LONG",
    "ROSS", "FOSTER", "JIMENEZ", "POWELL", "JENKINS", "PERRY", "RUSSELL", "SULLIVAN", "BELL",
    "COLEMAN", "BUTLER", "HENDERSON", "BARNES", "GONZALES", "FISHER", "VASQUEZ", "SIMMONS", "ROMERO",
    "JORDAN", "PATTERSON", "ALEXANDER", "HAMILTON", "GRAHAM", "REYNOLDS", "GRIFFIN", "WALLACE",
    "MORENO", "WEST", "COLE", "HAYES", "BRYANT", "HERRERA", "GIBSON", "ELLIS", "TRAN", "MEDINA",
    "AGUILAR", "STEVENS", "MURRAY", "FORD", "CASTRO", "MARSHALL", "OWENS", "HARRISON", "FERNANDEZ",
    "MCDONALD", "WOODS", "WASHINGTON", "KENNEDY", "WELLS", "VARGAS", "HENRY", "CHEN", "FREEMAN",
    "WEBB", "TUCKER", "GUZMAN", "BURNS", "CRAWFORD", "OLSON", "SIMPSON", "PORTER", "HUNTER", "GORDON",
    "MENDEZ", "SILVA", "SHAW", "SNYDER", "MASON", "DIXON", "MUNOZ", "HUNT", "HICKS", "HOLMES",
    "PALMER", "WAGNER", "BLACK", "ROBERTSON", "BOYD", "ROSE", "STONE", "SALAZAR", "FOX", "WARREN",
    "MILLS", "MEYER", "RICE", "SCHMIDT", "GARZA", "DANIELS", "FERGUSON", "NICHOLS", "STEPHENS",
    "SOTO", "WEAVER", "RYAN", "GARDNER", "PAYNE", "GRANT", "DUNN", "KELLEY", "SPENCER", "HAWKINS",
    "O'BRIEN", "O'NEAL", "MCCOY", "MCLAUGHLIN", "SMITH-JONES", "VAN DYKE", "DE LA CRUZ", "ST JOHN",
    # Latin-1 accented spellings, as states that keep diacritics deliver them.
    "MUÑOZ", "PEÑA", "NÚÑEZ", "IBÁÑEZ", "GONZÁLEZ", "RODRÍGUEZ", "HERNÁNDEZ", "MARTÍNEZ", "PÉREZ",
    "SÁNCHEZ", "GÓMEZ", "DÍAZ", "JIMÉNEZ", "BELTRÁN", "MÜLLER", "SCHRÖDER", "BJÖRK",
    "CÔTÉ", "LEFÈVRE",
]
HISPANIC_SURNAMES = {
    "GARCIA", "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "PEREZ", "SANCHEZ", "RAMIREZ",
    "TORRES", "FLORES", "RIVERA", "GOMEZ", "DIAZ", "CRUZ", "REYES", "MORALES", "GUTIERREZ", "ORTIZ",
    "RAMOS", "CHAVEZ", "MENDOZA", "RUIZ", "ALVAREZ", "CASTILLO", "JIMENEZ", "VASQUEZ", "ROMERO",
    "MORENO", "HERRERA", "MEDINA", "AGUILAR", "CASTRO", "FERNANDEZ", "VARGAS", "GUZMAN", "MENDEZ",
    "SILVA", "MUNOZ", "SALAZAR", "GARZA", "SOTO", "DE LA CRUZ", "MUÑOZ", "PEÑA", "NÚÑEZ", "IBÁÑEZ",
    "GONZÁLEZ", "RODRÍGUEZ", "HERNÁNDEZ", "MARTÍNEZ", "PÉREZ", "SÁNCHEZ", "GÓMEZ", "DÍAZ", "JIMÉNEZ",
    "BELTRÁN",
}
MALE_FIRST = [
    "JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "THOMAS", "CHARLES",
    "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "DONALD", "STEVEN", "PAUL", "ANDREW",
    "JOSHUA", "KENNETH", "KEVIN", "BRIAN", "GEORGE", "TIMOTHY", "RONALD", "EDWARD", "JASON", "JEFFREY",
    "RYAN", "JACOB", "GARY", "NICHOLAS", "ERIC", "JONATHAN", "STEPHEN", "LARRY", "JUSTIN", "SCOTT",
    "BRANDON", "BENJAMIN", "SAMUEL", "GREGORY", "ALEXANDER", "FRANK", "PATRICK", "RAYMOND", "JACK",
    "DENNIS", "JERRY", "TYLER", "AARON", "JOSE", "ADAM", "NATHAN", "HENRY", "DOUGLAS", "ZACHARY",
    "PETER", "KYLE", "NOAH", "ETHAN", "JEREMY", "WALTER", "CHRISTIAN", "KEITH", "ROGER", "TERRY",
    "AUSTIN", "SEAN", "GERALD", "CARL", "HAROLD", "DYLAN", "ARTHUR", "LAWRENCE", "JORDAN", "JESSE",
    "BRYAN", "BILLY", "BRUCE", "GABRIEL", "JOE", "LOGAN", "ALBERT", "WILLIE", "ALAN", "JUAN", "WAYNE",
    "ELIJAH", "RANDY", "ROY", "VINCENT", "RALPH", "EUGENE", "RUSSELL", "BOBBY", "MASON", "PHILIP",
    "LOUIS", "CARLOS", "LUIS", "JESUS", "MIGUEL", "DEANDRE", "D'ANGELO", "JEAN-PAUL",
    "JOSÉ", "JESÚS", "ANDRÉS", "RAÚL", "RENÉ", "JOËL", "FRANÇOIS", "SØREN", "ÅKE",
]
FEMALE_FIRST = [
    "MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "BARBARA", "SUSAN", "JESSICA", "SARAH",
    "KAREN", "LISA", "NANCY", "BETTY", "MARGARET", "SANDRA", "ASHLEY", "KIMBERLY", "EMILY", "DONNA",
    "MICHELLE", "CAROL", "AMANDA", "DOROTHY", "MELISSA", "DEBORAH", "STEPHANIE", "REBECCA", "SHARON",
    "LAURA", "CYNTHIA", "KATHLEEN", "AMY", "ANGELA", "SHIRLEY", "ANNA", "BRENDA", "PAMELA", "EMMA",
    "NICOLE", "HELEN", "SAMANTHA", "KATHERINE", "CHRISTINE", "DEBRA", "RACHEL", "CAROLYN", "JANET",
    "CATHERINE", "MARIA", "HEATHER", "DIANE", "RUTH", "JULIE", "OLIVIA", "JOYCE", "VIRGINIA",
    "VICTORIA", "KELLY", "LAUREN", "CHRISTINA", "JOAN", "EVELYN", "JUDITH", "MEGAN", "ANDREA",
    "CHERYL", "HANNAH", "JACQUELINE", "MARTHA", "GLORIA", "TERESA", "ANN", "SARA", "MADISON",
    "FRANCES", "KATHRYN", "JANICE", "JEAN", "ABIGAIL", "ALICE", "JUDY", "SOPHIA", "GRACE", "DENISE",
    "AMBER", "DORIS", "MARILYN", "DANIELLE", "BEVERLY", "ISABELLA", "THERESA", "DIANA", "NATALIE",
    "BRITTANY", "CHARLOTTE", "MARIE", "KAYLA", "ALEXIS", "LORI", "ROSA", "GUADALUPE", "MARY ANN",
    "MARÍA", "JOSÉFINA", "RENÉE", "ZOË", "CHLOÉ", "INÉS", "BEATRIZ", "ANAÏS", "SOLÈNE",
]
SUFFIXES = ["JR", "SR", "II", "III", "IV"]


def zipf_weights(n: int, exponent: float = 0.9) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def draw(pool: list[str], rng: np.random.Generator, size: int, exponent: float = 0.9) -> np.ndarray:
    """Draw `size` indices into `pool` with Zipf weights (the pool's order is its popularity)."""
    return rng.choice(len(pool), size=size, p=zipf_weights(len(pool), exponent))
