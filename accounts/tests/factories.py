import factory
from factory.django import DjangoModelFactory

from accounts.models import (
    Contact,
    Membership,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    TrialPhase,
    User,
)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    full_name = factory.Faker("name", locale="en_GB")
    password = factory.django.Password("correct horse battery staple")


class SupplierFactory(DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = Organisation.Kind.SUPPLIER
    name = factory.Sequence(lambda n: f"Supplier {n}")


class TrustFactory(DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = Organisation.Kind.TRUST
    name = factory.Sequence(lambda n: f"Trust {n}")


class SchoolFactory(DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = Organisation.Kind.SCHOOL
    name = factory.Sequence(lambda n: f"School {n}")
    urn = factory.Sequence(lambda n: f"{200000 + n:06d}")
    phase = Organisation.Phase.PRIMARY
    local_authority = "Leeds"


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    supplier = factory.SubFactory(SupplierFactory)
    name = factory.Sequence(lambda n: f"Product {n}")


class PartnershipFactory(DjangoModelFactory):
    class Meta:
        model = Partnership

    supplier = factory.SubFactory(SupplierFactory)
    school = factory.SubFactory(SchoolFactory)


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    school = factory.SubFactory(SchoolFactory)
    first_name = factory.Faker("first_name", locale="en_GB")
    last_name = factory.Faker("last_name", locale="en_GB")
    email = factory.Sequence(lambda n: f"staff{n}@school.example.org")


class PartnershipContactFactory(DjangoModelFactory):
    class Meta:
        model = PartnershipContact


class TrialPhaseFactory(DjangoModelFactory):
    class Meta:
        model = TrialPhase

    kind = TrialPhase.Kind.PILOT
    start_date = factory.Faker("date_between", start_date="-30d", end_date="today")
    end_date = factory.LazyAttribute(lambda o: o.start_date.replace(year=o.start_date.year + 1))
